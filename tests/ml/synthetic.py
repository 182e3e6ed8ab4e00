"""A tiny warehouse with the marts the ML code reads, generated in DuckDB for unit tests.

Customers buy at their own rate and some stop at a random day; each prefers one category
(so co-occurrence has signal); some browse (web events linked by device or account).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

START = dt.date(2025, 1, 1)
CATEGORIES = ("tea", "cups", "books", "toys")


def build(
    con: duckdb.DuckDBPyConnection,
    customers: int = 400,
    days: int = 360,
    seed: int = 1,
    with_lines: bool = True,
    with_events: bool = True,
) -> None:
    rng = np.random.default_rng(seed)
    skus = [f"{c}-{i}" for c in CATEGORIES for i in range(8)]
    sku_category = {s: s.split("-")[0] for s in skus}
    sku_price = {s: float(5 + 10 * (i % 8)) for i, s in enumerate(skus)}
    orders, lines, events = [], [], []
    for c in range(customers):
        customer = f"C{c:04d}"
        rate = rng.gamma(1.5, 1 / 40)  # purchases per day
        first = int(rng.integers(0, days // 2))
        stop = int(rng.integers(first + 1, days * 2))
        favourite = CATEGORIES[c % len(CATEGORIES)]
        day = first
        n = 0
        while day < min(stop, days):
            n += 1
            order_id = f"{customer}-{n}"
            date = START + dt.timedelta(days=day)
            online = rng.random() < 0.6
            status = rng.choice(["completed", "cancelled", "returned"], p=[0.9, 0.05, 0.05])
            basket = [
                rng.choice([s for s in skus if sku_category[s] == favourite])
                if rng.random() < 0.8
                else rng.choice(skus)
                for _ in range(int(rng.integers(1, 4)))
            ]
            amount = sum(sku_price[s] for s in basket)
            orders.append(
                {
                    "order_id": order_id,
                    "customer_id": customer,
                    "source": "online" if online else "store",
                    "channel": "web" if online else "store",
                    "order_status": status,
                    "coupon_code": "SAVE" if rng.random() < 0.1 else None,
                    "is_return": False,
                    "is_cancelled": status == "cancelled",
                    "is_purchase": status != "cancelled",
                    "gross_amount": amount,
                    "discount_amount": 0.0,
                    "net_amount": 0.0 if status == "returned" else amount,
                    "ordered_at": dt.datetime.combine(date, dt.time(12)),
                    "order_date": date,
                }
            )
            for i, sku in enumerate(basket):
                lines.append(
                    {
                        "order_line_id": f"{order_id}-{i}",
                        "order_id": order_id,
                        "customer_id": customer,
                        "sku": sku,
                        "category": sku_category[sku],
                        "is_return": False,
                        "quantity": 1,
                        "unit_price": sku_price[sku],
                        "line_amount": sku_price[sku],
                        "order_date": date,
                    }
                )
            if with_events and c % 2 == 0:
                for _ in range(int(rng.integers(0, 4))):
                    seen = min(days - 1, day + int(rng.integers(-5, 5)))
                    events.append(
                        {
                            "event_id": f"e{len(events)}",
                            "device_id": f"D{c:04d}",
                            "account_id": f"A{c:04d}" if c % 4 == 0 else None,
                            "sku": rng.choice([s for s in skus if sku_category[s] == favourite]),
                            "event_type": rng.choice(["product_view", "cart_add", "page_view"]),
                            "occurred_at": dt.datetime.combine(
                                START + dt.timedelta(days=max(seen, 0)), dt.time(9)
                            ),
                        }
                    )
            day += max(1, int(rng.exponential(1 / rate)))
    # A few customers who never bought anything (cold start).
    known = [f"C{c:04d}" for c in range(customers + 5)]
    identifiers = [
        {
            "identifier_type": "device_id",
            "identifier_value": f"D{c:04d}",
            "customer_id": f"C{c:04d}",
            "is_shared": False,
        }
        for c in range(customers)
    ] + [
        {
            "identifier_type": "account_id",
            "identifier_value": f"A{c:04d}",
            "customer_id": f"C{c:04d}",
            "is_shared": False,
        }
        for c in range(customers)
    ]
    products = pd.DataFrame(
        {
            "sku": skus,
            "product_name": skus,
            "category": [sku_category[s] for s in skus],
            "price": [sku_price[s] for s in skus],
            # One inactive product: it must never be recommended.
            "is_active": [s != skus[0] for s in skus],
        }
    )
    con.execute("create schema if not exists marts")
    con.execute("create schema if not exists staging")
    frames = {
        "marts.fct_orders": pd.DataFrame(orders),
        "marts.dim_customers": pd.DataFrame({"customer_id": known}),
        "marts.dim_customer_identifiers": pd.DataFrame(identifiers),
    }
    if with_lines:
        frames["marts.fct_order_lines"] = pd.DataFrame(lines)
        frames["staging.stg_catalog__products"] = products
    if with_events:
        frames["staging.stg_web__events"] = pd.DataFrame(events)
    for table, frame in frames.items():
        con.register("_frame", frame)
        con.execute(f"create or replace table {table} as select * from _frame")
        con.unregister("_frame")


def drop_after(con: duckdb.DuckDBPyConnection, cutoff: dt.date) -> None:
    """Delete every fact on or after ``cutoff``: the warehouse as it was the night before."""
    con.execute("delete from marts.fct_orders where order_date >= ?", [cutoff])
    for table, column in (
        ("marts.fct_order_lines", "order_date"),
        ("staging.stg_web__events", "cast(occurred_at as date)"),
    ):
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema || '.' || table_name = ?",
            [table],
        ).fetchone()[0]
        if exists:
            con.execute(f"delete from {table} where {column} >= ?", [cutoff])

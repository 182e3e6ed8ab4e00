"""ML timings at scale: recommendations and churn on a synthetic warehouse (not a test).

Builds a DuckDB file with the marts the ML code reads (default: 1M customers, 10k products,
~4M orders, 10M order lines with a power-law item distribution), generated in SQL, then runs
the same code as the Dagster assets. Each stage runs in its own process so its peak RSS
(os.wait4) is its own.

    .venv/bin/python benchmarks/bench_ml.py                     # 1M x 10k, both stages
    .venv/bin/python benchmarks/bench_ml.py --customers 100000 --items 2000 --lines 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

END = dt.date(2026, 11, 22)
DAYS = 365


def build_warehouse(path: Path, customers: int, items: int, lines: int) -> None:
    """Synthetic marts in SQL; pseudo-random values come from hash() so runs are reproducible."""
    import duckdb

    orders = max(customers, int(lines / 2.5))
    start = END - dt.timedelta(days=DAYS - 1)
    con = duckdb.connect(str(path))
    con.execute("create schema marts; create schema staging")
    # Customers buy at skewed rates (some often, most rarely); dates spread over the year.
    con.execute(
        f"""
        create table marts.fct_orders as
        select
            'o' || i as order_id,
            'C' || lpad(cast(floor({customers} * pow((hash(i, 1) % 1000003) / 1000003.0, 1.6)) as bigint)::varchar, 8, '0')
                as customer_id,
            case when hash(i, 2) % 10 < 6 then 'online' else 'store' end as source,
            case when hash(i, 2) % 10 < 6 then 'web' else 'store' end as channel,
            case when hash(i, 3) % 100 < 3 then 'cancelled' else 'completed' end as order_status,
            case when hash(i, 4) % 10 = 0 then 'SAVE10' end as coupon_code,
            false as is_return,
            hash(i, 3) % 100 < 3 as is_cancelled,
            hash(i, 3) % 100 >= 3 as is_purchase,
            cast(20 + hash(i, 5) % 400 as decimal(18, 4)) as gross_amount,
            cast(0 as decimal(18, 4)) as discount_amount,
            cast(20 + hash(i, 5) % 400 as decimal(18, 4)) as net_amount,
            cast(date '{start}' + cast(hash(i, 6) % {DAYS} as integer) as timestamp) as ordered_at,
            date '{start}' + cast(hash(i, 6) % {DAYS} as integer) as order_date
        from range({orders}) as t(i)
        """
    )
    # Item popularity is log-uniform (Zipf-like): item k is drawn with probability ~ 1/k.
    con.execute(
        f"""
        create table marts.fct_order_lines as
        with picks as (
            select j, 'o' || (j * {orders} // {lines}) as order_id,
                cast(floor(pow({items}, (hash(j, 7) % 1000003) / 1000003.0)) - 1 as bigint) as item
            from range({lines}) as t(j)
        )
        select
            'l' || j as order_line_id, picks.order_id, orders.customer_id,
            'SKU' || lpad(item::varchar, 6, '0') as sku,
            'cat' || (item % 50) as category, false as is_return, 1 as quantity,
            cast(10 + item % 300 as decimal(18, 4)) as unit_price,
            cast(10 + item % 300 as decimal(18, 4)) as line_amount,
            orders.order_date
        from picks inner join marts.fct_orders as orders using (order_id)
        """
    )
    con.execute(
        f"""
        create table marts.dim_customers as
        select 'C' || lpad(i::varchar, 8, '0') as customer_id from range({customers}) as t(i)
        """
    )
    con.execute(
        f"""
        create table staging.stg_catalog__products as
        select 'SKU' || lpad(i::varchar, 6, '0') as sku, 'cat' || (i % 50) as category,
            cast(10 + i % 300 as decimal(18, 4)) as price, true as is_active
        from range({items}) as t(i)
        """
    )
    con.close()


def stage_recommend(path: Path) -> dict[str, object]:
    import duckdb

    from ml import data, recommend

    timings: dict[str, object] = {}
    as_of = END + dt.timedelta(days=1)
    con = duckdb.connect(str(path))
    t = time.perf_counter()
    interactions, catalogue = data.load_interactions(con, as_of)
    timings["load_interactions_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    fitted = recommend.fit(interactions, catalogue)
    timings["co_occurrence_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    recs = recommend.recommendations(
        fitted,
        interactions.item_ids,
        interactions.customer_ids,
        k=10,
        customers=interactions.is_customer,
    )
    timings["score_all_customers_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    pairs = recommend.associations(fitted, interactions.item_ids)
    timings["associations_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    con.execute("create schema if not exists ml")
    for table, frame in (("recommendations", recs), ("product_associations", pairs)):
        con.register("_frame", frame)
        con.execute(f"create or replace table ml.{table} as select * from _frame")
        con.unregister("_frame")
    timings["write_tables_s"] = round(time.perf_counter() - t, 1)
    timings.update(
        {
            "customers": interactions.n_customers,
            "items": interactions.n_items,
            "interaction_rows": len(interactions.weight),
            "similarity_nnz": int(fitted.similarity.nnz),
            "recommendation_rows": recs.num_rows,
            "association_rows": pairs.num_rows,
        }
    )
    return timings


def stage_churn(path: Path) -> dict[str, object]:
    import duckdb

    from ml import churn, data

    timings: dict[str, object] = {}
    as_of = END + dt.timedelta(days=1)
    con = duckdb.connect(str(path), read_only=True)
    t = time.perf_counter()
    train = churn.build_dataset(con, as_of - dt.timedelta(days=90), 90)
    timings["training_features_and_labels_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    model, value = churn.fit_churn(train)
    timings["fit_classifier_and_value_model_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    features = data.churn_features(con, as_of)
    timings["scoring_features_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    scores = churn.churn_probability(model, features)
    churn.predicted_value(value, features)
    timings["score_s"] = round(time.perf_counter() - t, 1)
    timings.update(
        {
            "training_rows": train.rows,
            "positive_rate": round(train.positive_rate, 4),
            "scored_customers": len(scores),
        }
    )
    return timings


def _run_stage(name: str, path: Path) -> dict[str, object]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--stage", name, "--warehouse", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"stage {name} failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    result.update(
        {
            "stage": name,
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--stage", choices=["recommend", "churn"])
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    if args.stage:
        stage = stage_recommend if args.stage == "recommend" else stage_churn
        print(json.dumps(stage(args.warehouse)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_ml_") as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        t = time.perf_counter()
        build_warehouse(path, args.customers, args.items, args.lines)
        print(f"synthetic warehouse: {time.perf_counter() - t:.1f}s", file=sys.stderr)
        results = [_run_stage("recommend", path), _run_stage("churn", path)]
    print(
        f"# ML benchmark: {args.customers:,} customers x {args.items:,} items, "
        f"{args.lines:,} order lines ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})"
    )
    for result in results:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""RFM scores, lifecycle stage and revenue contribution in plain pandas: the common alternative.

This is the benchmark's yardstick for the dbt lifecycle models, written the way an analyst
would: read the orders and registrations out of the warehouse into DataFrames, then groupby,
rank and merge. It computes the same three outputs as the dbt models, with the same rules and
default thresholds (`dbt_project/macros/lifecycle_var.sql`):

- `int_customers_rfm_scored`: percent_rank quintiles of recency, frequency and spend; value
  tier from the cume_dist share of buyers spending at least as much;
- `int_customers_lifecycle_staged`: the stage reached since the last purchase day
  (`lifecycle_stage_after`), prospects from registrations;
- `rpt_revenue_contribution`: customers and revenue per stage and per value tier.

`assert_same` checks the frames against the dbt tables row for row (money within a cent,
other floats within 1e-6 relative), so "same results" is a checked claim, not a hope:

    .venv/bin/python benchmarks/pandas_lifecycle.py data/bench/<key>/warehouse.duckdb

The as-of date defaults to the one the dbt models were built with (`rpt_revenue_contribution`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

# The defaults of macros/lifecycle_var.sql; a project that overrides them in dbt_project.yml
# would have to change them here too, which is exactly the duplication dbt vars avoid.
NEW_CUSTOMER_DAYS = 30
AT_RISK_INTERVAL_MULTIPLIER = 1.5
MIN_AT_RISK_DAYS = 30
DEFAULT_INTERVAL_DAYS = 60
DORMANT_AFTER_DAYS = 180
CHURNED_AFTER_DAYS = 365
VALUE_TIER_TOP_SHARE = 0.05
VALUE_TIER_HIGH_SHARE = 0.15
VALUE_TIER_MEDIUM_SHARE = 0.30

MONEY_TOLERANCE = 0.01
RELATIVE_TOLERANCE = 1e-6

RFM_COLUMNS = [
    "customer_id",
    "rfm_recency_score",
    "rfm_frequency_score",
    "rfm_monetary_score",
    "value_tier",
    "rfm_order_count",
    "purchase_day_count",
    "rfm_net_revenue",
    "average_order_value",
    "avg_days_between_orders",
    "days_since_last_order",
]
STAGE_COLUMNS = [
    "customer_id",
    "lifecycle_stage",
    "is_repeat_buyer",
    "buyer_type",
    "at_risk_after_days",
    "registered_at",
    "first_registration_source",
]
REPORT_COLUMNS = [
    "segment_type",
    "segment",
    "customer_count",
    "buyer_count",
    "customer_share",
    "revenue_all_time",
    "revenue_share_all_time",
    "revenue_last_365_days",
    "revenue_share_last_365_days",
    "orders_per_buyer",
    "average_order_value",
    "as_of_date",
]
MONEY_COLUMNS = {
    "rfm_net_revenue",
    "average_order_value",
    "revenue_all_time",
    "revenue_last_365_days",
}
DBT_TABLES = {
    "int_customers_rfm_scored": ("intermediate.int_customers_rfm_scored", RFM_COLUMNS),
    "int_customers_lifecycle_staged": (
        "intermediate.int_customers_lifecycle_staged",
        STAGE_COLUMNS,
    ),
    "rpt_revenue_contribution": ("marts.rpt_revenue_contribution", REPORT_COLUMNS),
}
KEYS = {
    "int_customers_rfm_scored": ["customer_id"],
    "int_customers_lifecycle_staged": ["customer_id"],
    "rpt_revenue_contribution": ["segment_type", "segment"],
}


def load_inputs(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The analyst's starting point: the orders mart, the registrations and the customer list."""
    orders = con.sql(
        "select customer_id, order_id, order_date, is_purchase, net_amount "
        "from marts.fct_orders where customer_id is not null"
    ).df()
    registrations = con.sql(
        "select customer_id, first_registration_source, registered_at, registered_date "
        "from intermediate.int_customer_registrations"
    ).df()
    customers = con.sql("select customer_id from marts.dim_customers").df()
    return {"orders": orders, "registrations": registrations, "customers": customers}


def purchase_days(orders: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per customer per day they bought something, with the gap to the previous one."""
    as_of_ts = pd.Timestamp(as_of)
    bought = orders[orders["is_purchase"].fillna(False) & (orders["order_date"] <= as_of_ts)]
    days = (
        bought.groupby(["customer_id", "order_date"], as_index=False)
        .agg(order_count=("order_id", "count"), net_amount=("net_amount", "sum"))
        .rename(columns={"order_date": "purchase_date"})
        .sort_values(["customer_id", "purchase_date"], ignore_index=True)
    )
    by_customer = days.groupby("customer_id")
    days["purchase_number"] = by_customer.cumcount() + 1
    days["previous_purchase_date"] = by_customer["purchase_date"].shift(1)
    days["next_purchase_date"] = by_customer["purchase_date"].shift(-1)
    days["gap_days"] = (days["purchase_date"] - days["previous_purchase_date"]).dt.days
    # The usual interval known on each day: mean of the gaps so far (this one included).
    gaps_so_far = days["gap_days"].fillna(0).groupby(days["customer_id"]).cumsum()
    gap_count = days["gap_days"].notna().groupby(days["customer_id"]).cumsum()
    days["usual_interval_days"] = (gaps_so_far / gap_count).where(gap_count > 0)
    days["opening_stage"] = np.select(
        [days["purchase_number"] == 1, days["gap_days"] >= DORMANT_AFTER_DAYS],
        ["new", "reactivated"],
        default="active",
    )
    interval = days["usual_interval_days"].fillna(DEFAULT_INTERVAL_DAYS)
    days["at_risk_after_days"] = np.maximum(
        MIN_AT_RISK_DAYS, np.ceil(AT_RISK_INTERVAL_MULTIPLIER * interval)
    ).astype("int64")
    return days


def rfm_scored(orders: pd.DataFrame, days: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """RFM quintile scores and the value tier of every buying customer."""
    as_of_ts = pd.Timestamp(as_of)
    upto = orders[orders["order_date"] <= as_of_ts].copy()
    upto["purchase_id"] = upto["order_id"].where(upto["is_purchase"].fillna(False))
    upto["purchase_amount"] = upto["net_amount"].where(upto["is_purchase"].fillna(False))
    upto["purchase_date"] = upto["order_date"].where(upto["is_purchase"].fillna(False))
    totals = upto.groupby("customer_id", as_index=False).agg(
        order_count=("purchase_id", "count"),
        net_revenue=("net_amount", "sum"),
        purchase_amount=("purchase_amount", "sum"),
        last_order_date=("purchase_date", "max"),
    )
    totals = totals[totals["order_count"] > 0]
    # Amounts are DECIMAL(18, 4) in the warehouse; float sums of equal spend can differ in the
    # last bits, which would break rank ties that SQL keeps. Back to 4 decimals before ranking.
    totals["net_revenue"] = totals["net_revenue"].round(4)
    intervals = days.groupby("customer_id", as_index=False).agg(
        purchase_day_count=("purchase_date", "count"),
        avg_days_between_orders=("gap_days", "mean"),
    )
    rfm = totals.merge(intervals, on="customer_id", how="inner")
    n = len(rfm)

    def percent_rank(values: pd.Series) -> pd.Series:
        if n <= 1:
            return pd.Series(0.0, index=values.index)
        return (values.rank(method="min") - 1) / (n - 1)

    def score(values: pd.Series) -> pd.Series:
        return np.minimum(5, 1 + np.floor(5 * percent_rank(values))).astype("int32")

    rfm["rfm_recency_score"] = score(rfm["last_order_date"])
    rfm["rfm_frequency_score"] = score(rfm["order_count"])
    rfm["rfm_monetary_score"] = score(rfm["net_revenue"])
    top_share = rfm["net_revenue"].rank(method="max", ascending=False) / n
    rfm["value_tier"] = np.select(
        [
            rfm["net_revenue"] <= 0,
            top_share <= VALUE_TIER_TOP_SHARE,
            top_share <= VALUE_TIER_TOP_SHARE + VALUE_TIER_HIGH_SHARE,
            top_share <= VALUE_TIER_TOP_SHARE + VALUE_TIER_HIGH_SHARE + VALUE_TIER_MEDIUM_SHARE,
        ],
        ["none", "top", "high", "medium"],
        default="low",
    )
    rfm["rfm_order_count"] = rfm["order_count"].astype("int64")
    rfm["rfm_net_revenue"] = rfm["net_revenue"]
    rfm["average_order_value"] = rfm["purchase_amount"] / rfm["order_count"]
    rfm["days_since_last_order"] = (as_of_ts - rfm["last_order_date"]).dt.days
    return rfm[RFM_COLUMNS].reset_index(drop=True)


def lifecycle_staged(
    days: pd.DataFrame, registrations: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    """Each customer's stage on the as-of date: prospects, or the stage since their last purchase."""
    as_of_ts = pd.Timestamp(as_of)
    last = days[days["next_purchase_date"].isna()].copy()
    elapsed = (as_of_ts - last["purchase_date"]).dt.days
    last["lifecycle_stage"] = np.select(
        [
            elapsed >= CHURNED_AFTER_DAYS,
            elapsed >= DORMANT_AFTER_DAYS,
            elapsed >= last["at_risk_after_days"],
            last["opening_stage"].isin(["new", "reactivated"]) & (elapsed < NEW_CUSTOMER_DAYS),
        ],
        ["churned", "dormant", "at_risk", last["opening_stage"]],
        default="active",
    )
    last["is_repeat_buyer"] = last["purchase_number"] > 1
    buyers = last[["customer_id", "lifecycle_stage", "is_repeat_buyer", "at_risk_after_days"]]
    registered = registrations[registrations["registered_date"] <= as_of_ts]
    stages = buyers.merge(
        registered[["customer_id", "registered_at", "first_registration_source"]],
        on="customer_id",
        how="outer",
        indicator=True,
    )
    is_buyer = stages["_merge"] != "right_only"
    stages["lifecycle_stage"] = stages["lifecycle_stage"].fillna("prospect")
    stages["is_repeat_buyer"] = stages["is_repeat_buyer"].fillna(False).astype(bool)
    stages["buyer_type"] = np.select(
        [~is_buyer, stages["is_repeat_buyer"]], ["prospect", "repeat"], default="first_time"
    )
    stages["at_risk_after_days"] = stages["at_risk_after_days"].astype("Int64")
    return stages[STAGE_COLUMNS].reset_index(drop=True)


def revenue_contribution(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    stages: pd.DataFrame,
    rfm: pd.DataFrame,
    as_of: dt.date,
) -> pd.DataFrame:
    """Share of customers and of revenue per lifecycle stage and per value tier."""
    as_of_ts = pd.Timestamp(as_of)
    upto = orders[orders["order_date"] <= as_of_ts].copy()
    upto["revenue_last_365_days"] = upto["net_amount"].where(
        upto["order_date"] > as_of_ts - pd.Timedelta(days=365), 0.0
    )
    upto["purchase_id"] = upto["order_id"].where(upto["is_purchase"].fillna(False))
    revenue = upto.groupby("customer_id", as_index=False).agg(
        revenue_all_time=("net_amount", "sum"),
        revenue_last_365_days=("revenue_last_365_days", "sum"),
        order_count=("purchase_id", "count"),
    )
    people = (
        customers.merge(stages[["customer_id", "lifecycle_stage"]], on="customer_id", how="left")
        .merge(rfm[["customer_id", "value_tier"]], on="customer_id", how="left")
        .merge(revenue, on="customer_id", how="left")
    )
    people["lifecycle_stage"] = people["lifecycle_stage"].fillna("prospect")
    people["value_tier"] = people["value_tier"].fillna("none")
    people["is_buyer"] = people["order_count"] > 0
    parts = []
    for segment_type in ("lifecycle_stage", "value_tier"):
        part = people.groupby(segment_type, as_index=False).agg(
            customer_count=("customer_id", "count"),
            buyer_count=("is_buyer", "sum"),
            revenue_all_time=("revenue_all_time", "sum"),
            revenue_last_365_days=("revenue_last_365_days", "sum"),
            order_count=("order_count", "sum"),
        )
        part = part.rename(columns={segment_type: "segment"})
        part.insert(0, "segment_type", segment_type)
        part["customer_share"] = part["customer_count"] / part["customer_count"].sum()
        for column in ("revenue_all_time", "revenue_last_365_days"):
            total = part[column].sum()
            share = part[column] / total if total != 0 else np.nan
            suffix = column.removeprefix("revenue_")
            part[f"revenue_share_{suffix}"] = share
        parts.append(part)
    report = pd.concat(parts, ignore_index=True)
    report["order_count"] = report["order_count"].astype("int64")
    report["buyer_count"] = report["buyer_count"].astype("int64")
    report["orders_per_buyer"] = report["order_count"] / report["buyer_count"].replace(0, np.nan)
    report["average_order_value"] = report["revenue_all_time"] / report["order_count"].replace(
        0, np.nan
    )
    report["as_of_date"] = as_of_ts
    return report[REPORT_COLUMNS]


def compute(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, timings: dict[str, float] | None = None
) -> dict[str, pd.DataFrame]:
    """The three outputs, from reading the inputs to the finished frames."""
    started = time.perf_counter()
    inputs = load_inputs(con)
    if timings is not None:
        timings["read_seconds"] = time.perf_counter() - started
    days = purchase_days(inputs["orders"], as_of)
    rfm = rfm_scored(inputs["orders"], days, as_of)
    stages = lifecycle_staged(days, inputs["registrations"], as_of)
    report = revenue_contribution(inputs["customers"], inputs["orders"], stages, rfm, as_of)
    return {
        "int_customers_rfm_scored": rfm,
        "int_customers_lifecycle_staged": stages,
        "rpt_revenue_contribution": report,
    }


def dbt_as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The as-of date the dbt lifecycle models were last built with."""
    row = con.sql("select max(as_of_date) from marts.rpt_revenue_contribution").fetchone()
    if row is None or row[0] is None:
        raise ValueError(
            "marts.rpt_revenue_contribution is empty: build the lifecycle models before comparing"
        )
    return row[0]


def dbt_outputs(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    return {
        name: con.sql(f"select {', '.join(columns)} from {relation}").df()
        for name, (relation, columns) in DBT_TABLES.items()
    }


def _column_mismatches(column: str, ours: pd.Series, theirs: pd.Series) -> np.ndarray:
    """Positions where two aligned columns disagree (both missing counts as equal)."""
    ours_missing, theirs_missing = ours.isna().to_numpy(), theirs.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(ours) and pd.api.types.is_numeric_dtype(theirs):
        if pd.api.types.is_bool_dtype(ours) or pd.api.types.is_bool_dtype(theirs):
            a, b = ours.astype("boolean"), theirs.astype("boolean")
            equal = (a == b).fillna(False).to_numpy()
        else:
            a = ours.astype("float64").to_numpy(na_value=np.nan)
            b = theirs.astype("float64").to_numpy(na_value=np.nan)
            if column in MONEY_COLUMNS:
                equal = np.abs(a - b) <= MONEY_TOLERANCE
            else:
                equal = np.isclose(a, b, rtol=RELATIVE_TOLERANCE, atol=1e-9)
    elif pd.api.types.is_datetime64_any_dtype(ours) or pd.api.types.is_datetime64_any_dtype(theirs):
        equal = (pd.to_datetime(ours) == pd.to_datetime(theirs)).to_numpy()
    else:
        equal = (ours.astype("string") == theirs.astype("string")).fillna(False).to_numpy()
    both_missing = ours_missing & theirs_missing
    return np.flatnonzero(~(equal | both_missing) | (ours_missing != theirs_missing))


def differences(
    ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame], limit: int = 5
) -> list[str]:
    """Every way the pandas frames differ from the dbt tables (empty when they are equal)."""
    problems: list[str] = []
    for name, keys in KEYS.items():
        mine = ours[name].sort_values(keys, ignore_index=True)
        dbts = theirs[name].sort_values(keys, ignore_index=True)
        mine_keys = set(mine[keys].astype(str).itertuples(index=False))
        dbt_keys = set(dbts[keys].astype(str).itertuples(index=False))
        if len(mine) != len(dbts) or mine_keys != dbt_keys:
            problems.append(
                f"{name}: pandas has {len(mine)} rows, dbt {len(dbts)}; "
                f"only in pandas: {sorted(mine_keys - dbt_keys)[:limit]}, "
                f"only in dbt: {sorted(dbt_keys - mine_keys)[:limit]}"
            )
            continue
        for column in mine.columns:
            if column in keys:
                continue
            bad = _column_mismatches(column, mine[column], dbts[column])
            if len(bad):
                examples = [
                    f"{mine.loc[i, keys].tolist()}: pandas {mine.loc[i, column]!r} "
                    f"vs dbt {dbts.loc[i, column]!r}"
                    for i in bad[:limit]
                ]
                problems.append(
                    f"{name}.{column}: {len(bad)} of {len(mine)} rows differ, e.g. "
                    + "; ".join(examples)
                )
    return problems


def assert_same(ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame]) -> None:
    problems = differences(ours, theirs)
    if problems:
        raise AssertionError(
            "pandas and dbt lifecycle outputs differ:\n" + "\n".join(f"- {p}" for p in problems)
        )


def run(warehouse: Path, as_of: dt.date | None = None) -> dict[str, object]:
    """Compute in pandas, time it, and check against the dbt tables in the same warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        as_of = as_of or dbt_as_of(con)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        ours = compute(con, as_of, timings)
        seconds = time.perf_counter() - started
        theirs = dbt_outputs(con)
    assert_same(ours, theirs)
    return {
        "as_of_date": as_of.isoformat(),
        "pandas_seconds": round(seconds, 2),
        "read_seconds": round(timings["read_seconds"], 2),
        "rows": {name: len(frame) for name, frame in ours.items()},
        "equal": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args()
    if not args.warehouse.exists():
        sys.exit(f"no warehouse at {args.warehouse}")
    print(json.dumps(run(args.warehouse, args.as_of), indent=2))


if __name__ == "__main__":
    main()

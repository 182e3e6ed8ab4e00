"""How well anyone could predict churn on generated data: the generator's own purchase intensities.

The churn model is judged on generated data, so its out-of-time AUC is only meaningful next to
what the data allows. This rebuilds the simulated people from the generation's parameters (the
same seeded draw) and works out, for each customer in a churn evaluation set, the number of
purchases the simulation *expected* of them in the label window: their purchase rate, the
channels' seasonality and their defection and comeback on each day. Ranking customers by it is
the best ranking any model could reach without seeing the Poisson luck of the window itself;
its AUC is the ceiling the model's AUC should be read against. Three rankings, by what they
may know (``KNOWLEDGE``): the rate alone, the state at the cutoff (what history could reveal),
and an oracle that also knows the defections that begin inside the window.

Ground truth is used here as a diagnostic only, never as a model feature.

    .venv/bin/python -m datagen.ceiling --warehouse data/demo/warehouse.duckdb \\
        --truth data/demo/truth --as-of 2026-08-24
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from datagen import generator as g

# Identifiers that name one person exactly in the landing data (emails and phones are
# formatted differently per source and shared within households).
EXACT_IDENTIFIERS = ("account_id", "member_card_id", "device_id")


def people(customers: int, days: int, seed: int, end_date: dt.date, horizon_days: int = 90):
    """The simulated people and calendar of a generation with these parameters."""
    start = end_date - dt.timedelta(days=days - 1)
    cal = g.Calendar(start, days, horizon_days)
    stores = g._stores(g._rng(seed, 0, 2), customers)
    return g._persons(g._rng(seed, 0, 3), customers, cal, stores, end_date), cal


# What the ranking may know of each simulated person, from least to most:
KNOWLEDGE = {
    # their purchase rate and channel mix, and whether they had been acquired: no defection
    "rate": "purchase rate, channel mix and acquisition only",
    # also every defection and comeback that had begun before the cutoff (with its decay or
    # stop): all a model could in principle infer from history, and no more
    "state_at_cutoff": "also the defections and comebacks begun before the cutoff",
    # also the defections and comebacks that begin inside the label window: an oracle
    "oracle": "also the defections and comebacks that begin in the label window",
}
_NEVER = 1 << 30


def known(persons, cal, cutoff: dt.date, knowledge: str):
    """The people as a ranking with this knowledge sees them: defections (and comebacks) it
    cannot know never happen."""
    if knowledge not in KNOWLEDGE:
        raise ValueError(f"knowledge must be one of {', '.join(KNOWLEDGE)}, not {knowledge!r}")
    if knowledge == "oracle":
        return persons
    cutoff_day = (cutoff - cal.start).days
    limit = -_NEVER if knowledge == "rate" else cutoff_day
    seen = vars(persons).copy()
    seen["defect_day"] = np.where(persons.defect_day < limit, persons.defect_day, _NEVER)
    # A stop needs its defection (it starts stop_lag days after it), so it goes with it.
    seen["react_day"] = np.where(persons.react_day < limit, persons.react_day, _NEVER)
    return type(persons)(**seen)


def expected_purchases(persons, cal, first: dt.date, end: dt.date) -> np.ndarray:
    """Purchases each person was expected to make on days [first, end), online and in store.

    The generator draws Poisson(rate x channel share x T) purchases per channel, spreads them
    over the days by the channel's seasonality (mean 1), and keeps each with the person's
    activity on its day (acquisition, defection, comeback); the birthday purchase (22% of
    buyers, within a week or so of it) is left out as noise of about 0.2 purchases a year.
    """
    lo = max((first - cal.start).days, 0)
    hi = min((end - cal.start).days, cal.T)
    n = len(persons.rate)
    everyone, total = np.arange(n), np.zeros(n)
    for day in range(lo, hi):
        activity = g._activity(persons, everyone, np.full(n, day))
        online, store = cal.season[0][day], cal.season[1][day]
        mix = persons.online_share * online + (1 - persons.online_share) * store
        total += persons.rate * mix * activity
    return total


def person_of_customers(con: duckdb.DuckDBPyConnection, truth: Path) -> pa.Table:
    """(customer_id, person) pairs, from the identifiers that name one person exactly."""
    identifiers = pq.read_table(truth / "identifiers.parquet")
    con.register("_truth_identifiers", identifiers)
    try:
        return con.execute(
            f"""
            select distinct customers.customer_id,
                cast(substr(truth.person_id, 2) as bigint) as person
            from _truth_identifiers as truth
            inner join marts.dim_customer_identifiers as customers
                on customers.identifier_type = truth.identifier_type
                and customers.identifier_value = truth.value
            where truth.identifier_type in {EXACT_IDENTIFIERS}
                and customers.customer_id is not null
            """
        ).to_arrow_table()
    finally:
        con.unregister("_truth_identifiers")


def intensities(
    con: duckdb.DuckDBPyConnection,
    truth: Path,
    as_of: dt.date,
    *,
    customers: int,
    days: int,
    seed: int,
    end_date: dt.date,
    horizon_days: int = 90,
) -> pd.DataFrame:
    """Per customer of the churn backtest's evaluation set at ``as_of`` (a purchase before it,
    labelled by ``[as_of, as_of + H)``) whose person is known: the label, the purchases made in
    the window, those before ``as_of``, and the purchases each ``KNOWLEDGE`` level expected."""
    from ml import churn, data

    dataset = churn.build_dataset(con, as_of, horizon_days)
    outcomes = data.horizon_outcomes(con, as_of, horizon_days)["purchases"]
    persons, cal = people(customers, days, seed, end_date)
    pairs = person_of_customers(con, truth).to_pandas()
    evaluated = dataset.churned.index.intersection(pairs["customer_id"].unique())
    frame = pd.DataFrame(
        {
            "churned": dataset.churned.loc[evaluated],
            "purchases_in_window": outcomes.reindex(evaluated).fillna(0).astype("int64"),
            "purchases_before": dataset.features.loc[evaluated, "frequency"],
        }
    )
    end = as_of + dt.timedelta(days=horizon_days)
    for knowledge in KNOWLEDGE:
        expected = expected_purchases(known(persons, cal, as_of, knowledge), cal, as_of, end)
        # A customer resolved from several people (an over-merge) buys when any of them does.
        frame[knowledge] = (
            pairs.assign(expected=expected[pairs["person"].to_numpy()])
            .groupby("customer_id")["expected"]
            .sum()
            .loc[evaluated]
        )
    frame.attrs["evaluation_customers"] = dataset.rows
    return frame


def churn_ceiling(frame: pd.DataFrame, as_of: dt.date, horizon_days: int = 90) -> dict:
    """The AUC of ranking ``intensities`` by each knowledge level's expected purchases."""
    from sklearn.metrics import roc_auc_score

    result: dict = {
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "evaluation_customers": int(frame.attrs.get("evaluation_customers", len(frame))),
        "customers_with_a_known_person": len(frame),
        "churn_rate": round(float(frame["churned"].mean()), 4),
        # Against the oracle's mean expected purchases: how well the draw is rebuilt.
        "mean_purchases_in_window": round(float(frame["purchases_in_window"].mean()), 3),
        "median_purchases_before_as_of": float(frame["purchases_before"].median()),
    }
    for knowledge, meaning in KNOWLEDGE.items():
        result[knowledge] = {
            "knows": meaning,
            # P(no purchase) falls as the expected count rises: the ranking is by -expected.
            "auc": round(float(roc_auc_score(frame["churned"], -frame[knowledge])), 4),
            "mean_expected_purchases": round(float(frame[knowledge].mean()), 3),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True, help="<generated>/truth")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--end-date",
        type=dt.date.fromisoformat,
        default=None,
        help="last generated day (default: the latest online_orders partition beside --truth)",
    )
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args(argv)
    end_date = args.end_date or max(
        dt.date.fromisoformat(p.name)
        for p in (args.truth.parent / "landing" / "online_orders").iterdir()
    )
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        frame = intensities(
            con,
            args.truth,
            args.as_of,
            customers=args.customers,
            days=args.days,
            seed=args.seed,
            end_date=end_date,
            horizon_days=args.horizon_days,
        )
    result = churn_ceiling(frame, args.as_of, args.horizon_days)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

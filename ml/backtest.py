"""Out-of-time backtests: train as of an earlier cutoff, score at ``as_of``, compare with what
really happened in the ``horizon_days`` after ``as_of``. Results are plain JSON-ready dicts.

Time line for a backtest at ``as_of`` with horizon H (all intervals half-open, in days):

    train features: [.., as_of - H)   train labels: [as_of - H, as_of)
    score features: [.., as_of)       evaluation:   [as_of, as_of + H)

The training labels end where the scoring features start, so nothing the model learns from
overlaps the evaluation window. Only identity resolution (who is the same customer) is built
on the whole warehouse, including days after ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import duckdb
import numpy as np

from ml import churn, data, recommend


def _check_window(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, horizon_days: int, history_days: int
) -> data.DataRange:
    if horizon_days < 1:
        raise ValueError(f"--horizon-days must be at least 1, got {horizon_days}")
    span = data.data_range(con)
    last_needed = as_of + dt.timedelta(days=horizon_days - 1)
    if last_needed > span.last_order_date:
        latest = span.last_order_date - dt.timedelta(days=horizon_days - 1)
        raise ValueError(
            f"--as-of {as_of} with --horizon-days {horizon_days} needs orders up to {last_needed}, "
            f"but the data ends on {span.last_order_date}; use --as-of {latest} or earlier"
        )
    earliest = span.first_order_date + dt.timedelta(days=history_days)
    if as_of < earliest:
        raise ValueError(
            f"--as-of {as_of} leaves too little history: the data starts on "
            f"{span.first_order_date} and this backtest needs {history_days} days before "
            f"--as-of; use --as-of {earliest} or later"
        )
    return span


def _clean(value: Any) -> Any:
    """JSON has no NaN: report unknown figures as null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def churn_backtest(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    horizon_days: int = churn.DEFAULT_HORIZON_DAYS,
    random_state: int = churn.DEFAULT_RANDOM_STATE,
) -> dict[str, Any]:
    """Fit the churn model and both baselines at ``as_of - H`` (labels up to ``as_of``), score
    the customers with a purchase before ``as_of`` and judge on ``[as_of, as_of + H)``."""
    started = time.perf_counter()
    # At least 30 days of history before the training cutoff, so it holds customers to learn from.
    span = _check_window(con, as_of, horizon_days, history_days=horizon_days + 30)
    train_cutoff = as_of - dt.timedelta(days=horizon_days)
    train = churn.build_dataset(con, train_cutoff, horizon_days)
    test = churn.build_dataset(con, as_of, horizon_days)
    if test.rows == 0:
        raise ValueError(f"no customer has a purchase before --as-of {as_of}: nothing to score")
    split = churn.evaluate_split(train, test, random_state)
    gain = split.auc_gain
    result = {
        "task": "churn",
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "train_cutoff": train_cutoff.isoformat(),
        "data": {
            "first_order_date": span.first_order_date.isoformat(),
            "last_order_date": span.last_order_date.isoformat(),
            "has_order_lines": data.has_rows(con, data.ORDER_LINES),
            "has_web_events": data.events_available(con),
        },
        "training": {"rows": train.rows, "positive_rate": round(train.positive_rate, 4)},
        "evaluation": {"rows": test.rows, "positive_rate": round(test.positive_rate, 4)},
        "model": split.metrics["model"],
        "baselines": {n: split.metrics[n] for n in ("recency", "rfm_logistic")},
        "best_baseline": split.best_baseline,
        "auc_gain_over_best_baseline": round(gain, 4),
        "target_auc_gain": 0.03,
        "target_met": bool(gain >= 0.03),
        "calibration": split.calibration.round(4).to_dict("records"),
        "lift_by_decile": split.lift.round(4).to_dict("records"),
        "predicted_value": split.value,
        "random_state": random_state,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return _clean(result)


def recommendations_backtest(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    horizon_days: int = recommend.DEFAULT_HORIZON_DAYS,
    k: int = recommend.DEFAULT_K,
    config: recommend.RecommenderConfig | None = None,
) -> dict[str, Any]:
    """Hit-rate@k and recall@k of the recommender and of popularity on the same customers.

    Relevant items of a customer = SKUs bought in ``[as_of, as_of + H)`` that they had not
    bought before ``as_of`` (repurchases do not count: both lists exclude past purchases, so
    neither could hit them). Customers with no new SKU in the horizon are not evaluated.
    """
    started = time.perf_counter()
    if k < 1:
        raise ValueError(f"--k must be at least 1, got {k}")
    span = _check_window(con, as_of, horizon_days, history_days=30)
    config = config or recommend.RecommenderConfig()
    interactions, catalogue = data.load_interactions(
        con,
        as_of,
        half_life_days=config.half_life_days,
        max_items_per_customer=config.max_items_per_customer,
    )
    fitted = recommend.fit(interactions, catalogue, config)
    truth = data.horizon_purchases(con, as_of, horizon_days)
    evaluation = recommend.evaluate(fitted, interactions, truth, k=k)
    result = {
        "task": "recommendations",
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "k": k,
        "data": {
            "first_order_date": span.first_order_date.isoformat(),
            "last_order_date": span.last_order_date.isoformat(),
            "has_order_lines": data.has_rows(con, data.ORDER_LINES),
            "has_web_events": data.events_available(con),
            "customers": interactions.n_customers,
            "items": interactions.n_items,
            "interactions": len(interactions.weight),
        },
        "repurchases_count": False,
        **evaluation,
        "target_ratio": 2.0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return _clean(result)

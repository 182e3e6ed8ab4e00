"""Churn features, labels, model output and metrics on a small generated warehouse (real DuckDB)."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import backtest, churn, data
from tests.ml import synthetic

CUTOFF = dt.date(2025, 8, 1)


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    synthetic.build(con, customers=600, seed=3)
    return con


def _copy(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    other = duckdb.connect()
    other.execute("create schema marts; create schema staging")
    for (table,) in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
    ).fetchall():
        other.register("_frame", con.execute(f"select * from {table}").df())
        other.execute(f"create table {table} as select * from _frame")
        other.unregister("_frame")
    return other


@pytest.mark.parametrize("cutoff", [dt.date(2025, 4, 1), CUTOFF, dt.date(2025, 11, 15)])
def test_features_are_identical_whether_or_not_later_data_exists(
    warehouse: duckdb.DuckDBPyConnection, cutoff: dt.date
) -> None:
    full = data.churn_features(warehouse, cutoff)
    truncated = _copy(warehouse)
    synthetic.drop_after(truncated, cutoff)
    assert len(full) > 100
    pd.testing.assert_frame_equal(full, data.churn_features(truncated, cutoff))


def test_changing_data_after_the_cutoff_changes_no_feature(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    before = data.churn_features(warehouse, CUTOFF)
    tampered = _copy(warehouse)
    # Inflate every later order and move later events to other customers' devices.
    tampered.execute(
        "update marts.fct_orders set net_amount = net_amount * 100, channel = 'app' "
        "where order_date >= ?",
        [CUTOFF],
    )
    tampered.execute(
        "update staging.stg_web__events set device_id = 'D0000', event_type = 'cart_add' "
        "where occurred_at >= ?",
        [dt.datetime.combine(CUTOFF, dt.time())],
    )
    pd.testing.assert_frame_equal(before, data.churn_features(tampered, CUTOFF))


def test_interactions_at_a_cutoff_ignore_later_data(warehouse: duckdb.DuckDBPyConnection) -> None:
    full, full_catalogue = data.load_interactions(warehouse, CUTOFF)
    truncated = _copy(warehouse)
    synthetic.drop_after(truncated, CUTOFF)
    cut, cut_catalogue = data.load_interactions(truncated, CUTOFF)

    def pairs(i: data.Interactions) -> pd.DataFrame:
        return (
            pd.DataFrame(
                {
                    "customer": i.customer_ids.take(i.customer_idx).to_pylist(),
                    "sku": i.item_ids.take(i.item_idx).to_pylist(),
                    "weight": i.weight,
                    "purchased": i.purchased,
                }
            )
            .sort_values(["customer", "sku"])
            .reset_index(drop=True)
        )

    pd.testing.assert_frame_equal(pairs(full), pairs(cut))
    np.testing.assert_allclose(full_catalogue.purchases, cut_catalogue.purchases)


def test_labels_count_only_purchases_in_the_horizon(warehouse: duckdb.DuckDBPyConnection) -> None:
    dataset = churn.build_dataset(warehouse, CUTOFF, horizon_days=60)
    bought = set(
        warehouse.execute(
            "select distinct customer_id from marts.fct_orders where is_purchase "
            "and order_date >= ? and order_date < ?",
            [CUTOFF, CUTOFF + dt.timedelta(days=60)],
        ).fetchnumpy()["customer_id"]
    )
    expected = (~dataset.features.index.isin(list(bought))).astype(int)
    assert dataset.churned.tolist() == expected.tolist()
    assert dataset.features["recency_days"].min() >= 0
    assert 0.05 < dataset.positive_rate < 0.95


def test_calibrated_scores_are_probabilities_with_a_calibration_table(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    train = churn.build_dataset(warehouse, dt.date(2025, 6, 1), 90)
    model, value_model = churn.fit_churn(train, random_state=0)
    scoring = data.churn_features(warehouse, dt.date(2025, 9, 1))
    scores = churn.churn_probability(model, scoring)
    assert len(scores) == len(scoring)
    assert np.all((scores >= 0) & (scores <= 1))
    assert len(np.unique(scores)) > 10  # a ranking, not a constant
    assert np.all(churn.predicted_value(value_model, scoring) >= 0)

    truth = churn.build_dataset(warehouse, dt.date(2025, 9, 1), 90).churned.to_numpy()
    table = churn.calibration_table(truth, scores)
    assert table["customers"].sum() == len(scores)
    assert table["mean_predicted"].between(0, 1).all()
    assert table["observed_rate"].between(0, 1).all()
    lift = churn.lift_by_decile(truth, scores)
    assert lift["decile"].tolist() == list(range(1, 11))
    assert lift["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    # Same seed, same data: the same scores.
    again, _ = churn.fit_churn(train, random_state=0)
    np.testing.assert_array_equal(scores, churn.churn_probability(again, scoring))


def test_backtest_reports_model_and_baselines_on_the_same_split(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    result = backtest.churn_backtest(warehouse, dt.date(2025, 9, 1), horizon_days=90)
    assert result["train_cutoff"] == "2025-06-03"
    assert set(result["baselines"]) == {"recency", "rfm_logistic"}
    rows = result["evaluation"]["rows"]
    for metrics in (result["model"], *result["baselines"].values()):
        assert 0.5 < metrics["auc"] <= 1
        assert 0 < metrics["pr_auc"] <= 1 and 0 <= metrics["brier"] <= 1
        assert metrics["rows"] == rows
    assert result["auc_gain_over_best_baseline"] == pytest.approx(
        result["model"]["auc"] - result["baselines"][result["best_baseline"]]["auc"], abs=1e-4
    )


def test_backtest_refuses_a_window_the_data_does_not_cover(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(ValueError, match=r"needs orders up to .* use --as-of"):
        backtest.churn_backtest(warehouse, dt.date(2025, 12, 1), horizon_days=90)
    with pytest.raises(ValueError, match="too little history"):
        backtest.churn_backtest(warehouse, dt.date(2025, 2, 1), horizon_days=90)


def test_orders_only_warehouse_still_trains() -> None:
    con = duckdb.connect()
    synthetic.build(con, customers=500, seed=5, with_lines=False, with_events=False)
    features = data.churn_features(con, CUTOFF)
    assert (features["category_count"] == 0).all()
    assert features["days_since_last_event"].isna().all()
    result = backtest.churn_backtest(con, dt.date(2025, 9, 1), horizon_days=90)
    assert result["data"] == {
        "first_order_date": result["data"]["first_order_date"],
        "last_order_date": result["data"]["last_order_date"],
        "has_order_lines": False,
        "has_web_events": False,
    }
    assert 0 <= result["model"]["brier"] <= 1


def test_a_warehouse_without_orders_fails_clearly() -> None:
    with pytest.raises(ValueError, match=r"marts\.fct_orders does not exist"):
        data.churn_features(duckdb.connect(), CUTOFF)


def test_purchase_day_interval_and_channel_features_match_the_orders() -> None:
    # An independent count from the orders themselves, with channels missing on some orders
    # (a store feed without one): the SQL's groupings must agree with it customer by customer.
    con = duckdb.connect()
    synthetic.build(con, customers=400, seed=11, with_lines=False, with_events=False)
    con.execute("update marts.fct_orders set channel = null where hash(order_id) % 7 = 0")
    features = data.churn_features(con, CUTOFF)
    orders = con.execute(
        "select customer_id, order_date, channel from marts.fct_orders "
        "where is_purchase and customer_id is not null and order_date < $cutoff",
        {"cutoff": CUTOFF},
    ).df()
    days = orders.drop_duplicates(["customer_id", "order_date"]).sort_values(
        ["customer_id", "order_date"]
    )
    days["gap"] = days.groupby("customer_id")["order_date"].diff().dt.days
    by_customer = days.groupby("customer_id")
    expected = pd.DataFrame(
        {
            "purchase_days": by_customer.size().astype("float64"),
            "mean_interval_days": by_customer["gap"].mean(),
            "std_interval_days": by_customer["gap"].std(),
            "last_interval_days": by_customer["gap"].last(),
            "channel_count": orders.groupby("customer_id")["channel"].nunique().astype("float64"),
        }
    )
    expected.index.name = "customer_id"
    assert orders["channel"].isna().any() and (expected["purchase_days"] == 1).any()
    actual = features[list(expected.columns)].sort_index()
    pd.testing.assert_frame_equal(
        actual, expected.sort_index().reindex(actual.index), check_index_type=False
    )


@pytest.mark.parametrize(
    ("training_rows", "learning_rate", "calibration"),
    [
        (800, 0.05, "sigmoid"),
        (4_185, 0.05, "sigmoid"),
        (12_000, 0.05, "isotonic"),
        (433_617, 0.1, "isotonic"),
    ],
)
def test_the_classifiers_step_and_calibration_follow_the_training_size(
    training_rows: int, learning_rate: float, calibration: str
) -> None:
    # Large training sets take the larger step (the smaller one only grew more trees for
    # every nightly score to walk); small shops keep the smaller step and Platt scaling.
    classifier = churn.make_model(training_rows=training_rows).named_steps["classifier"]
    assert classifier.estimator.learning_rate == learning_rate
    assert classifier.method == calibration
    assert classifier.ensemble is False

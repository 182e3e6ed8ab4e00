"""Recommendations and associations on a small generated warehouse (real DuckDB, real scipy)."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from ml import backtest, data, recommend
from tests.ml import synthetic

AS_OF = dt.date(2025, 11, 1)


@pytest.fixture(scope="module")
def fitted() -> tuple[duckdb.DuckDBPyConnection, data.Interactions, recommend.FittedRecommender]:
    con = duckdb.connect()
    synthetic.build(con, customers=400, seed=2)
    interactions, catalogue = data.load_interactions(con, AS_OF)
    return con, interactions, recommend.fit(interactions, catalogue)


def _by_customer(table: pa.Table) -> dict[str, list[str]]:
    frame = table.to_pandas().sort_values(["customer_id", "rank"])
    return frame.groupby("customer_id")["sku"].apply(list).to_dict()


def test_already_bought_items_and_inactive_products_are_never_recommended(fitted) -> None:
    con, interactions, model = fitted
    recs = recommend.recommendations(model, interactions.item_ids, interactions.customer_ids, k=10)
    bought = (
        con.execute(
            "select lines.customer_id, list(distinct lines.sku) from marts.fct_order_lines as lines "
            "inner join marts.fct_orders as orders using (order_id) "
            "where orders.is_purchase and not orders.is_cancelled and lines.order_date < ? "
            "group by 1",
            [AS_OF],
        )
        .df()
        .set_index("customer_id")
        .iloc[:, 0]
        .to_dict()
    )
    per_customer = _by_customer(recs)
    assert len(per_customer) == interactions.n_customers
    for customer, skus in per_customer.items():
        assert not set(skus) & set(bought.get(customer, [])), customer
        assert "tea-0" not in skus  # inactive in the catalogue
        assert len(skus) == len(set(skus))
    ranks = recs.to_pandas().groupby("customer_id")["rank"].apply(list)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks)


def test_cold_customers_get_the_popularity_ranking(fitted) -> None:
    _, interactions, model = fitted
    recs = recommend.recommendations(model, interactions.item_ids, interactions.customer_ids, k=5)
    frame = recs.to_pandas()
    cold = frame[frame["customer_id"].isin(["C0400", "C0401", "C0404"])]
    assert set(cold["reason"]) == {"popular"}
    expected_order = [
        interactions.item_ids[i].as_py()
        for i in np.argsort(-model.popularity, kind="stable")
        if model.recommendable[i]
    ][:5]
    for _, skus in cold.sort_values("rank").groupby("customer_id")["sku"]:
        assert skus.tolist() == expected_order


def test_recommendations_follow_the_customers_taste(fitted) -> None:
    _, interactions, model = fitted
    # In the generated data customer c prefers category c % 4 for 80% of their items.
    rows = np.arange(400)
    favourite = np.array(synthetic.CATEGORIES)[rows % len(synthetic.CATEGORIES)]
    categories = np.array([s.split("-")[0] for s in interactions.item_ids.to_pylist()])

    def share_in_favourite(items: np.ndarray) -> float:
        valid = items >= 0
        return float((categories[items] == favourite[:, None])[valid].mean())

    ours, _, _ = recommend.score_batch(model, rows, k=3)
    popular, _, _ = recommend.score_batch(model, rows, k=3, popularity_only=True)
    assert share_in_favourite(ours) > share_in_favourite(popular) + 0.2


def test_associations_are_symmetric_and_sane(fitted) -> None:
    _, interactions, model = fitted
    pairs = recommend.associations(model, interactions.item_ids).to_pandas()
    assert len(pairs) > 0
    assert (pairs["sku"] != pairs["related_sku"]).all()
    assert pairs["score"].between(0, 1).all()
    assert (pairs["support"] >= model.config.min_support).all()
    assert pairs.groupby("sku").size().max() <= model.config.associations_per_item
    assert "tea-0" not in set(pairs["related_sku"])
    # Shrunk cosine is symmetric: where both directions are kept, they carry the same figures.
    both = pairs.merge(
        pairs, left_on=["sku", "related_sku"], right_on=["related_sku", "sku"], suffixes=("", "_r")
    )
    assert len(both) > 0
    np.testing.assert_allclose(both["score"], both["score_r"], rtol=1e-5)
    assert (both["support"] == both["support_r"]).all()
    # Items of one category go together in the generated data.
    same = pairs["sku"].str.split("-").str[0] == pairs["related_sku"].str.split("-").str[0]
    top = pairs.sort_values("score", ascending=False).groupby("sku").head(1)
    assert same.loc[top.index].mean() > 0.8


def test_blocked_co_occurrence_matches_a_dense_computation(fitted) -> None:
    _, _, model = fitted
    config = recommend.RecommenderConfig(block_items=7, neighbours=1000, min_support=1)
    similarity, support = recommend.item_similarity(model.weights, config)
    binary = (model.weights.toarray() > 0).astype(float)
    co = binary.T @ binary
    np.fill_diagonal(co, 0)
    counts = binary.sum(axis=0)
    dense = co / (np.sqrt(np.outer(counts, counts)) + config.shrinkage)
    np.testing.assert_allclose(similarity.toarray(), dense, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(support.toarray(), co)


def test_per_customer_item_cap_bounds_the_matrix(fitted) -> None:
    con, _, _ = fitted
    interactions, _ = data.load_interactions(con, AS_OF, max_items_per_customer=3)
    per_customer = np.bincount(
        interactions.customer_idx[interactions.in_cap], minlength=interactions.n_customers
    )
    assert per_customer.max() <= 3
    # Purchases beyond the cap are kept for exclusion only.
    assert interactions.purchased[~interactions.in_cap].all()


def test_backtest_beats_popularity_on_taste_driven_data(fitted) -> None:
    con, _, _ = fitted
    result = backtest.recommendations_backtest(con, dt.date(2025, 10, 1), horizon_days=60, k=5)
    assert result["evaluated_customers"] > 50
    model, popular = result["model"], result["popularity"]
    assert 0 <= popular["hit_rate_at_5"] < model["hit_rate_at_5"] <= 1
    assert 0 <= model["recall_at_5"] <= 1
    assert result["repurchases_count"] is False


def test_recommendations_without_order_lines_report_nothing_to_judge() -> None:
    con = duckdb.connect()
    synthetic.build(con, customers=100, seed=4, with_lines=False, with_events=False)
    interactions, catalogue = data.load_interactions(con, AS_OF)
    assert interactions.n_items == 0
    model = recommend.fit(interactions, catalogue)
    assert (
        recommend.recommendations(model, interactions.item_ids, interactions.customer_ids).num_rows
        == 0
    )
    result = backtest.recommendations_backtest(con, dt.date(2025, 10, 1))
    assert result["evaluated_customers"] == 0 and "note" in result


def test_recommendations_do_not_depend_on_the_thread_count(fitted, monkeypatch) -> None:
    _, interactions, model = fitted
    # Small batches, so several are in flight at once on the threads.
    monkeypatch.setattr(recommend, "_SCORE_CELLS_PER_BATCH", 1)
    assert recommend.batch_rows(interactions.n_items) < interactions.n_customers
    tables = [
        pa.concat_tables(
            recommend.iter_recommendations(
                model, interactions.item_ids, interactions.customer_ids, k=7, threads=threads
            )
        )
        for threads in (1, 3)
    ]
    assert tables[0].num_rows > 0
    assert tables[0].equals(tables[1])

"""ML assets: churn model and scores, recommendations and product associations.

Thin wrappers: every computation is in the pure ``ml`` package; these read the warehouse
through the ``duckdb`` resource, write ``ml.*`` tables in one transaction each, and put the
figures a data engineer needs in the asset metadata. ``ml.*`` tables are dbt sources
(models/ml/_ml__sources.yml), so audiences that read them show up downstream of these assets.
"""

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from ml import data, defaults
from orchestration.memory import arrow_memory_returned

# scikit-learn, skops and scipy (ml.churn, ml.artefacts, ml.recommend) are imported inside the
# functions that use them: every process that loads the code location (each run worker, sensor
# tick, dbt step) would otherwise pay about 2 s of CPU importing them.

CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])
CHURN_SCORES = dg.AssetKey(["ml", "churn_scores"])
RECOMMENDATIONS = dg.AssetKey(["ml", "recommendations"])
ASSOCIATIONS = dg.AssetKey(["ml", "product_associations"])

WAREHOUSE_DEPS = [
    dg.AssetKey(["marts", "fct_orders"]),
    dg.AssetKey(["marts", "fct_order_lines"]),
    dg.AssetKey(["marts", "dim_customers"]),
    dg.AssetKey(["marts", "dim_customer_identifiers"]),
    dg.AssetKey(["staging", "stg_web__events"]),
    dg.AssetKey(["staging", "stg_catalog__products"]),
]


class ModelStore(dg.ConfigurableResource):
    """Where model artefacts (skops + metadata.json) are kept: ``path``, else the MODEL_DIR
    environment variable, else ``data/models``. Never committed."""

    path: str | None = None

    def root(self) -> Path:
        from ml import artefacts

        return artefacts.model_root(self.path or os.environ.get("MODEL_DIR"))


class ChurnConfig(dg.Config):
    as_of: str | None = None
    """Scoring date YYYY-MM-DD; default: the day after the last order in marts.fct_orders."""
    horizon_days: int = defaults.CHURN_HORIZON_DAYS
    """A customer churns when they make no purchase in this many days."""
    random_state: int = defaults.CHURN_RANDOM_STATE
    retrain_after_days: int = 7
    """ml/churn_model keeps the latest model while it was trained with the same horizon, seed,
    features and scikit-learn for an as_of fewer than this many days before this run's, so the
    nightly run only scores (training is most of the ML time at 1M customers); 0 retrains on
    every run. Scores are recomputed on every run either way."""


class RecommendationsConfig(dg.Config):
    as_of: str | None = None
    """Only interactions before this date (YYYY-MM-DD) count; default: the day after the last order."""
    k: int = defaults.RECOMMENDATIONS_K
    """Recommendations per customer."""
    half_life_days: float = 90.0
    max_items_per_customer: int = 50
    neighbours: int = 50
    refit_after_days: int = 7
    """The item-item model (similarity, popularity, price bands) is refitted when the saved one
    was fitted for an as_of this many days or more before this run's, or another way (half-life,
    cap, neighbours); 0 refits on every run. Between refits a run rescores only the customers
    whose interactions changed (see `incremental`)."""
    incremental: bool = True
    """With a reused model, rescore only the customers whose interaction history changed since
    the last run (new purchases, views, cart adds, cancellations, identity merges), new
    customers, and those holding an item the catalogue has withdrawn; everyone else keeps their
    rows, which are what a full rescore would give. False rescores every customer."""


def _as_of(con, value: str | None) -> dt.date:
    if value:
        try:
            return dt.date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"as_of must be a date YYYY-MM-DD, got {value!r}") from error
    return data.data_range(con).default_as_of


def _saved_as_of(latest: dict) -> dt.date | None:
    """The as_of a saved model was fitted for, from its metadata (None if unreadable)."""
    try:
        return dt.date.fromisoformat(str(latest["as_of"]))
    except (KeyError, ValueError):
        return None


def _reusable_model(
    latest: dict | None, config: ChurnConfig, as_of: dt.date, has_events: bool
) -> str | None:
    """Why the latest saved model may stand in for a retrain, or None when it must be retrained."""
    import sklearn

    from ml import churn

    if latest is None or config.retrain_after_days <= 0:
        return None
    trained_as_of = _saved_as_of(latest)
    if trained_as_of is None:
        return None
    age = (as_of - trained_as_of).days
    same_recipe = (
        latest.get("horizon_days") == config.horizon_days
        and latest.get("random_state") == config.random_state
        and latest.get("features") == list(churn.MODEL_FEATURES)
        and latest.get("has_web_events") == has_events
        and str(latest.get("sklearn_version", "")).split(".")[:2]
        == sklearn.__version__.split(".")[:2]
    )
    if not same_recipe or not 0 <= age < config.retrain_after_days:
        return None
    return (
        f"model {latest.get('version')} was trained for as_of {trained_as_of} ({age} days "
        f"before this run's {as_of}); it is retrained once that is {config.retrain_after_days} "
        "days or more (config retrain_after_days)"
    )


def _empty_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="string"),
            "score": pd.Series([], dtype="float64"),
            "predicted_value_90d": pd.Series([], dtype="float64"),
            "horizon_days": pd.Series([], dtype="int64"),
            "as_of": pd.Series([], dtype="datetime64[s]"),
            "model_version": pd.Series([], dtype="string"),
            "scored_at": pd.Series([], dtype="datetime64[us]"),
        }
    )


def _replace_table(con, table: str, frame: pa.Table | pd.DataFrame, order_by: str) -> None:
    """Create-or-replace ``table`` from ``frame`` in one transaction: readers see the old table
    or the new one, never a half-written one."""
    con.register("_ml_frame", frame)
    try:
        con.execute("begin transaction")
        con.execute("create schema if not exists ml")
        con.execute(
            f"create or replace table {table} as select * from _ml_frame order by {order_by}"
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_ml_frame")


CHURN_MODEL_DESCRIPTION = """Churn classifier (calibrated boosted trees) trained on the latest fully observed horizon.

Label: no purchase in the H days (default 90) after the cutoff; features (recency,
frequency, value, purchase rhythm, channel mix, categories, returns, discounts, browsing)
use only data before it. Training: features at `as_of - H`, labels from `[as_of - H, as_of)`.
The metrics below are out of time (the same recipe fitted one horizon earlier and judged
on the latest horizon) and sit next to two baselines, recency only and RFM logistic
regression. Saved with skops in MODEL_DIR (default data/models), never committed.

Retrained weekly by default: while the latest model is younger than `retrain_after_days`
(7) and was trained the same way, a run records `trained: false` with the reason and
churn_scores scores with that model. Set `retrain_after_days: 0` to retrain now."""

CHURN_SCORES_DESCRIPTION = """`ml.churn_scores`: one row per customer with at least one purchase before `as_of`.

`score` is the calibrated probability that the customer makes no purchase in the next
`horizon_days` (0.8 = about 8 in 10 such customers do not come back). `predicted_value_90d`
is the expected net revenue over the next 90 days (null when the model's horizon is not 90).
Prospects without a purchase get no row. Built with the latest model in MODEL_DIR."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CHURN_MODEL,
            group_name="ml",
            kinds={"scikit-learn", "duckdb"},
            deps=WAREHOUSE_DEPS,
            description=CHURN_MODEL_DESCRIPTION,
        ),
        dg.AssetSpec(
            CHURN_SCORES,
            group_name="ml",
            kinds={"scikit-learn", "duckdb"},
            deps=[CHURN_MODEL, *WAREHOUSE_DEPS],
            description=CHURN_SCORES_DESCRIPTION,
        ),
    ],
    pool="duckdb",
    can_subset=True,
)
def churn(
    context: dg.AssetExecutionContext,
    config: ChurnConfig,
    duckdb: DuckDBResource,
    model_store: ModelStore,
) -> Iterator[dg.MaterializeResult]:
    """The churn model, then the scores it gives (either alone when only one is selected).

    One step for both: as two assets, Dagster put the audiences that read the scores one step
    deeper than those that read the recommendations and built them in a dbt invocation of
    their own (about 4 s of dbt start-up a night at 1M customers)."""
    with arrow_memory_returned():
        if CHURN_MODEL in context.selected_asset_keys:
            yield _churn_model(context, config, duckdb, model_store)
        if CHURN_SCORES in context.selected_asset_keys:
            yield _churn_scores(context, config, duckdb, model_store)


def _churn_model(
    context: dg.AssetExecutionContext,
    config: ChurnConfig,
    duckdb: DuckDBResource,
    model_store: ModelStore,
) -> dg.MaterializeResult:
    from ml import artefacts, churn

    with duckdb.get_connection() as con:
        as_of = _as_of(con, config.as_of)
        reuse = _reusable_model(
            artefacts.latest_metadata("churn", root=model_store.root()),
            config,
            as_of,
            data.events_available(con),
        )
        if reuse is not None:
            context.log.info("not retraining: %s", reuse)
            return dg.MaterializeResult(
                asset_key=CHURN_MODEL,
                metadata={"trained": False, "reason": reuse, "as_of": as_of.isoformat()},
            )
        span = data.data_range(con)
        try:
            trained = churn.train(con, as_of, config.horizon_days, config.random_state)
        except churn.InsufficientHistoryError as error:
            # A young shop (or a small test set) has no fully observed horizon yet: the nightly
            # run goes on, scores keep the last model if there is one, audiences still build.
            context.log.warning(str(error))
            return dg.MaterializeResult(
                asset_key=CHURN_MODEL,
                metadata={"trained": False, "reason": str(error), "as_of": as_of.isoformat()},
            )
        has_events = data.events_available(con)
    validation = trained.validation
    btyd = trained.model.named_steps["btyd"]
    metadata_json = {
        "as_of": as_of.isoformat(),
        "horizon_days": config.horizon_days,
        "train_cutoff": trained.train.cutoff.isoformat(),
        "training_window": {
            "features_from": span.first_order_date.isoformat(),
            "features_before": trained.train.cutoff.isoformat(),
            "labels": f"[{trained.train.cutoff}, {as_of})",
        },
        "features": list(churn.MODEL_FEATURES),
        "has_web_events": has_events,
        "training_rows": trained.train.rows,
        "positive_rate": round(trained.train.positive_rate, 4),
        "random_state": config.random_state,
        "btyd_params": [round(float(v), 6) for v in btyd.params_],
        "validation_scheme": trained.validation_scheme,
        "validation": validation.metrics if validation else None,
        "value_validation": validation.value if validation else None,
    }
    artefact = artefacts.save(
        {"churn": trained.model, "value": trained.value_model},
        metadata_json,
        name="churn",
        root=model_store.root(),
    )
    context.log.info("saved %s to %s", artefact.version, artefact.path)
    metadata: dict[str, object] = {
        "model_version": artefact.version,
        "model_path": dg.MetadataValue.path(str(artefact.path)),
        "as_of": as_of.isoformat(),
        "train_cutoff": trained.train.cutoff.isoformat(),
        "horizon_days": config.horizon_days,
        "training_rows": trained.train.rows,
        "positive_rate": round(trained.train.positive_rate, 4),
        "validation_scheme": trained.validation_scheme,
        "uses_web_events": has_events,
    }
    if validation is not None:
        model_metrics = validation.metrics["model"]
        metadata.update(
            {
                "auc": model_metrics["auc"],
                "pr_auc": model_metrics["pr_auc"],
                "brier": model_metrics["brier"],
                "baseline_recency_auc": validation.metrics["recency"]["auc"],
                "baseline_rfm_logistic_auc": validation.metrics["rfm_logistic"]["auc"],
                "auc_gain_over_best_baseline": round(validation.auc_gain, 4),
                "metrics_vs_baselines": dg.MetadataValue.md(
                    churn.markdown_table(
                        pd.DataFrame(
                            [
                                {"model": name, **{k: m[k] for k in ("auc", "pr_auc", "brier")}}
                                for name, m in validation.metrics.items()
                            ]
                        ),
                        digits=4,
                    )
                ),
                "calibration": dg.MetadataValue.md(churn.markdown_table(validation.calibration)),
                "lift_by_decile": dg.MetadataValue.md(churn.markdown_table(validation.lift)),
                "value_mae": validation.value["model"]["mae"],
                "value_baseline_mae": validation.value["baseline_last_horizon_revenue"]["mae"],
            }
        )
    return dg.MaterializeResult(asset_key=CHURN_MODEL, metadata=metadata)


def _churn_scores(
    context: dg.AssetExecutionContext,
    config: ChurnConfig,
    duckdb: DuckDBResource,
    model_store: ModelStore,
) -> dg.MaterializeResult:
    from ml import artefacts, churn

    try:
        models, artefact = artefacts.load("churn", root=model_store.root())
    except FileNotFoundError as error:
        # No model trained yet (not enough history): an empty table keeps the contract for
        # the audiences that join it.
        context.log.warning(f"no churn model to score with: {error}")
        with duckdb.get_connection() as con:
            _replace_table(con, "ml.churn_scores", _empty_scores(), "customer_id")
        return dg.MaterializeResult(
            asset_key=CHURN_SCORES, metadata={"dagster/row_count": 0, "trained_model": False}
        )
    horizon = int(artefact.metadata["horizon_days"])
    if horizon != config.horizon_days:
        raise ValueError(
            f"the latest churn model ({artefact.version}) predicts {horizon} days but this run "
            f"asks for horizon_days={config.horizon_days}: materialise ml/churn_model with the same config"
        )
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with duckdb.get_connection() as con:
        as_of = _as_of(con, config.as_of)
        features = data.churn_features(con, as_of)
        frame = pd.DataFrame(
            {
                "customer_id": features.index.astype(str),
                "score": churn.churn_probability(models["churn"], features).round(6),
                "predicted_value_90d": (
                    churn.predicted_value(models["value"], features).round(2)
                    if horizon == 90
                    else pd.Series([None] * len(features), dtype="float64")
                ),
                "horizon_days": horizon,
                "as_of": as_of,
                "model_version": artefact.version,
                "scored_at": scored_at,
            }
        )
        _replace_table(con, "ml.churn_scores", frame, "customer_id")
    context.log.info("scored %d customers with %s", len(frame), artefact.version)
    bands = pd.cut(frame["score"], [0, 0.2, 0.4, 0.6, 0.8, 1.0], include_lowest=True)
    distribution = (
        frame.groupby(bands, observed=False)["customer_id"]
        .count()
        .rename("customers")
        .reset_index()
    )
    distribution["score"] = distribution["score"].astype(str)
    return dg.MaterializeResult(
        asset_key=CHURN_SCORES,
        metadata={
            "dagster/row_count": len(frame),
            "model_version": artefact.version,
            "as_of": as_of.isoformat(),
            "mean_score": round(float(frame["score"].mean()), 4) if len(frame) else None,
            "share_above_0_5": round(float((frame["score"] > 0.5).mean()), 4)
            if len(frame)
            else None,
            "predicted_value_90d_total": round(float(frame["predicted_value_90d"].sum()), 2)
            if horizon == 90
            else None,
            "score_distribution": dg.MetadataValue.md(churn.markdown_table(distribution)),
        },
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RECOMMENDATIONS,
            group_name="ml",
            kinds={"scipy", "duckdb"},
            deps=WAREHOUSE_DEPS,
            description=(
                "`ml.recommendations`: top-k products per customer that they have not bought "
                "(customer_id, rank, sku, score, reason). Item-item co-occurrence over purchases, "
                "cart adds and product views (online and store), blended with the customer's "
                "category and price-band preferences; customers with no history get the most "
                "popular items (reason = popular). Only active catalogue items that someone "
                "interacted with are recommended."
            ),
        ),
        dg.AssetSpec(
            ASSOCIATIONS,
            group_name="ml",
            kinds={"scipy", "duckdb"},
            deps=WAREHOUSE_DEPS,
            description=(
                '`ml.product_associations`: "bought together" per product (sku, related_sku, '
                "score, support). score = shrunk cosine similarity of the customers who "
                "interacted with both; support = how many customers did. Up to 20 related "
                "products each."
            ),
        ),
    ],
    pool="duckdb",
    can_subset=False,
)
def recommendations(
    context: dg.AssetExecutionContext,
    config: RecommendationsConfig,
    duckdb: DuckDBResource,
    model_store: ModelStore,
):
    """Fits the item-item model weekly (saved in MODEL_DIR as `recommender`) and, between
    refits, rescores only the customers whose interactions changed; the metadata says which
    (`mode`: refit, rescored_all or incremental, with `customers_rescored`)."""
    with arrow_memory_returned():
        yield from _recommendations(context, config, duckdb, model_store)


def _recommendations(
    context: dg.AssetExecutionContext,
    config: RecommendationsConfig,
    duckdb: DuckDBResource,
    model_store: ModelStore,
) -> Iterator[dg.MaterializeResult]:
    from ml import artefacts, churn, recommend

    root = model_store.root()
    recommender = recommend.RecommenderConfig(
        half_life_days=config.half_life_days,
        max_items_per_customer=config.max_items_per_customer,
        neighbours=config.neighbours,
    )
    # Three short connections rather than one: DuckDB keeps its buffer pool (up to the memory
    # limit) while a connection is open, and fitting and scoring need about as much again in
    # numpy. Holding both put the 1M run at 4.3 GB; releasing it between phases keeps the peak
    # near the larger of the two.
    with duckdb.get_connection() as con:
        as_of = _as_of(con, config.as_of)
        reuse = _reusable_recommender(
            con, artefacts.latest_metadata(RECOMMENDER, root=root), recommender, config, as_of
        )
        model, artefact = artefacts.load(RECOMMENDER, root=root) if reuse else (None, None)
        fitted_as_of = _saved_as_of(artefact.metadata) if artefact else as_of
        items = pa.array(model["item_ids"], pa.string()) if model else None
        interactions, catalogue = _read_interactions(con, as_of, recommender, fitted_as_of, items)
        active = data.active_items(con, items) if model else None
    pairs = None
    if model is None:
        fitted = recommend.fit(interactions, catalogue, recommender)
        saved = artefacts.save(
            recommend.model_state(fitted, interactions.item_ids),
            {
                "train_cutoff": as_of.isoformat(),
                "as_of": as_of.isoformat(),
                **_recommender_recipe(recommender),
            },
            name=RECOMMENDER,
            root=root,
        )
        model_version, mode = saved.version, "refit"
        pairs = recommend.associations(fitted, interactions.item_ids)
    else:
        fitted = recommend.from_state(model, interactions, active)
        model_version, mode = artefact.version, "rescored_all"
    with duckdb.get_connection() as con:
        selected, stale, mode = _customers_to_score(
            con, interactions, fitted, model_version, config, mode
        )
    recs = recommend.recommendations(
        fitted,
        interactions.item_ids,
        interactions.customer_ids,
        k=config.k,
        customers=selected,
    )
    with duckdb.get_connection() as con:
        _write_recommendations(
            con, recs, stale, interactions, fitted, model_version, config.k, pairs
        )
        total_rows, association_rows = con.execute(
            "select (select count(*) from ml.recommendations), "
            f"(select count(*) from {ASSOCIATIONS_TABLE})"
        ).fetchone()
    reasons = recs.group_by("reason").aggregate([("reason", "count")]).to_pandas()
    rescored = int(selected.sum())
    context.log.info(
        "%s with model %s (fitted for %s): %d recommendations for %d of %d customers rescored",
        mode,
        model_version,
        fitted_as_of,
        recs.num_rows,
        rescored,
        int(interactions.is_customer.sum()),
    )
    yield dg.MaterializeResult(
        asset_key=RECOMMENDATIONS,
        metadata={
            "dagster/row_count": total_rows,
            "as_of": as_of.isoformat(),
            "mode": mode,
            "model_version": model_version,
            "model_fitted_as_of": fitted_as_of.isoformat(),
            "reason": reuse or "no reusable model",
            "customers": int(interactions.is_customer.sum()),
            "customers_rescored": rescored,
            "items": interactions.n_items,
            "recommendable_items": int(fitted.recommendable.sum()),
            "interactions": len(interactions.weight),
            "k": config.k,
            "reasons_of_rescored": dg.MetadataValue.md(
                churn.markdown_table(reasons.rename(columns={"reason_count": "recommendations"}))
            ),
        },
    )
    # Associations come from the item model alone: between refits the table stays that of the
    # fit, and the materialisation says so (downstream audiences still see it as fresh input).
    yield dg.MaterializeResult(
        asset_key=ASSOCIATIONS,
        metadata={
            "dagster/row_count": association_rows,
            "as_of": as_of.isoformat(),
            "model_version": model_version,
            "model_fitted_as_of": fitted_as_of.isoformat(),
            "rewritten": pairs is not None,
        },
    )


RECOMMENDER = "recommender"
# Per customer of the last write: the interaction fingerprint they were scored from, with the
# model and k; and the items that were recommendable then. Kept in the warehouse and written in
# the same transaction as ml.recommendations, so they can never disagree with it.
INPUTS_TABLE = "ml.recommendation_inputs"
ITEMS_TABLE = "ml.recommendable_items"
ASSOCIATIONS_TABLE = "ml.product_associations"


def _read_interactions(con, as_of: dt.date, recommender, reference: dt.date, items):
    """Interactions (and the catalogue, when there is no saved model's ``items`` to index
    against). The Arrow tables they are built from are dropped on return: at 1M customers they
    hold about 400 MB that fitting and scoring do not need."""
    table = data.interaction_table(
        con,
        as_of,
        half_life_days=recommender.half_life_days,
        max_items_per_customer=recommender.max_items_per_customer,
        decay_reference=reference,
    )
    universe = data.customer_universe(con, table)
    if items is None:
        return data.load_interactions_from(
            con, as_of, table, universe, half_life_days=recommender.half_life_days
        )
    return data.index_interactions(table, universe, items), None


def _recommender_recipe(recommender) -> dict:
    return {
        "half_life_days": recommender.half_life_days,
        "max_items_per_customer": recommender.max_items_per_customer,
        "neighbours": recommender.neighbours,
    }


def _reusable_recommender(
    con, latest: dict | None, recommender, config: RecommendationsConfig, as_of: dt.date
) -> str | None:
    """Why the saved item model may be reused, or None when it must be refitted. Only the
    warehouse whose recommendations it last wrote reuses it (a rebuilt or other warehouse has
    other customers and no associations of that model)."""
    if latest is None or config.refit_after_days <= 0:
        return None
    if not all(data.table_exists(con, t) for t in (INPUTS_TABLE, ITEMS_TABLE, ASSOCIATIONS_TABLE)):
        return None
    written_with = con.execute(f"select distinct model_version from {INPUTS_TABLE}").fetchall()
    if written_with != [(latest.get("version"),)]:
        return None
    fitted_as_of = _saved_as_of(latest)
    if fitted_as_of is None:
        return None
    age = (as_of - fitted_as_of).days
    recipe = _recommender_recipe(recommender)
    if any(latest.get(key) != value for key, value in recipe.items()):
        return None
    if not 0 <= age < config.refit_after_days:
        return None
    return (
        f"model {latest.get('version')} was fitted for as_of {fitted_as_of} ({age} days before "
        f"this run's {as_of}); it is refitted once that is {config.refit_after_days} days or "
        "more (config refit_after_days)"
    )


def _customers_to_score(con, interactions, fitted, model_version: str, config, mode: str):
    """(mask of customers to score, customer ids whose stored rows go, mode)."""
    import numpy as np
    import pyarrow.compute as pc

    customers = interactions.is_customer
    everyone = (customers, None, mode)
    if mode == "refit" or not config.incremental:
        return everyone
    if not (data.table_exists(con, INPUTS_TABLE) and data.table_exists(con, ITEMS_TABLE)):
        return everyone
    runs = con.execute(f"select distinct model_version, k from {INPUTS_TABLE}").fetchall()
    if runs != [(model_version, config.k)]:
        return everyone
    previous_items = con.execute(f"select sku from {ITEMS_TABLE}").to_arrow_table()["sku"]
    was = pc.is_in(interactions.item_ids, value_set=previous_items.combine_chunks())
    was = was.to_numpy(zero_copy_only=False)
    if (fitted.recommendable & ~was).any():
        return everyone  # an item came (back) into the catalogue: it may belong in anyone's list
    previous = con.execute(f"select customer_id, fingerprint from {INPUTS_TABLE}").to_arrow_table()
    position = pc.index_in(
        interactions.customer_ids, value_set=previous["customer_id"].combine_chunks()
    )
    before = pc.take(previous["fingerprint"].combine_chunks(), position)
    same = pc.equal(before, pa.array(interactions.fingerprint, pa.uint64()))
    changed = customers & ~pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    withdrawn = interactions.item_ids.filter(pa.array(was & ~fitted.recommendable))
    if len(withdrawn):
        holding = con.execute(
            "select distinct customer_id from ml.recommendations where list_contains($skus, sku)",
            {"skus": withdrawn.to_pylist()},
        ).to_arrow_table()["customer_id"]
        changed |= customers & pc.is_in(
            interactions.customer_ids, value_set=holding.combine_chunks()
        ).to_numpy(zero_copy_only=False)
    current = interactions.customer_ids.filter(pa.array(customers))
    gone = pc.invert(pc.is_in(previous["customer_id"], value_set=current))
    stale = pa.concat_arrays(
        [
            interactions.customer_ids.filter(pa.array(changed)),
            previous["customer_id"].combine_chunks().filter(gone.combine_chunks()),
        ]
    )
    return np.asarray(changed), stale, "incremental"


def _write_recommendations(
    con, recs: pa.Table, stale, interactions, fitted, model_version: str, k: int, pairs
) -> None:
    """One transaction: the new rows replace the stale customers' rows (or the whole table),
    the input fingerprints and recommendable items are recorded, associations replaced."""
    customers = pa.array(interactions.is_customer)
    inputs = pa.table(
        {
            "customer_id": interactions.customer_ids.filter(customers),
            "fingerprint": pa.array(interactions.fingerprint, pa.uint64()).filter(customers),
            "model_version": pa.array([model_version] * int(interactions.is_customer.sum())),
            "k": pa.array([k] * int(interactions.is_customer.sum()), pa.int32()),
        }
    )
    items = pa.table({"sku": interactions.item_ids.filter(pa.array(fitted.recommendable))})
    frames = {"_ml_recs": recs, "_ml_inputs": inputs, "_ml_items": items}
    if stale is not None:
        frames["_ml_stale"] = pa.table({"customer_id": stale})
    if pairs is not None:
        frames["_ml_pairs"] = pairs
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        con.execute("begin transaction")
        con.execute("create schema if not exists ml")
        if stale is None:
            con.execute(
                "create or replace table ml.recommendations as "
                "select * from _ml_recs order by customer_id, rank"
            )
        else:
            con.execute(
                "delete from ml.recommendations "
                "where customer_id in (select customer_id from _ml_stale)"
            )
            con.execute("insert into ml.recommendations select * from _ml_recs")
        con.execute(f"create or replace table {INPUTS_TABLE} as select * from _ml_inputs")
        con.execute(f"create or replace table {ITEMS_TABLE} as select * from _ml_items")
        if pairs is not None:
            con.execute(
                f"create or replace table {ASSOCIATIONS_TABLE} as "
                "select * from _ml_pairs order by sku, score desc, related_sku"
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        for name in frames:
            con.unregister(name)


@dg.asset_check(asset=CHURN_SCORES, blocking=True, pool="duckdb")
def churn_scores_are_probabilities(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Every score is a probability in [0, 1] and every customer appears once."""
    with duckdb.get_connection() as con:
        bad, duplicates = con.execute(
            "select count(*) filter (where score is null or score < 0 or score > 1), "
            "count(*) - count(distinct customer_id) from ml.churn_scores"
        ).fetchone()
    return dg.AssetCheckResult(
        passed=bad == 0 and duplicates == 0,
        metadata={"scores_outside_0_1": bad, "duplicate_customers": duplicates},
    )


@dg.asset_check(asset=RECOMMENDATIONS, blocking=True, pool="duckdb")
def recommendations_exclude_purchases(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    """No customer is recommended a product they bought before the date the recommendations
    were made for (the `as_of` of the latest materialisation)."""
    event = context.instance.get_latest_materialization_event(RECOMMENDATIONS)
    materialization = event.asset_materialization if event else None
    as_of_value = materialization.metadata.get("as_of") if materialization else None
    if as_of_value is None:
        return dg.AssetCheckResult(passed=False, description="no materialisation with an as_of")
    as_of = dt.date.fromisoformat(str(as_of_value.value))
    with duckdb.get_connection() as con:
        if not data.has_rows(con, data.ORDER_LINES):
            return dg.AssetCheckResult(passed=True, metadata={"already_bought": 0})
        (bought,) = con.execute(
            f"""
            select count(*) from ml.recommendations as recs
            -- A semi join, not a correlated EXISTS (planned as a delim join): 1M customers,
            -- 3.8 s -> 1.9 s, same count.
            semi join (
                select lines.customer_id, lines.sku
                from {data.ORDER_LINES} as lines
                inner join {data.ORDERS} as orders using (order_id)
                where lines.quantity > 0 and orders.is_purchase and not orders.is_cancelled
                    and lines.order_date < $as_of
            ) as bought
                on bought.customer_id = recs.customer_id and bought.sku = recs.sku
            """,
            {"as_of": as_of},
        ).fetchone()
    return dg.AssetCheckResult(
        passed=bought == 0, metadata={"already_bought": bought, "as_of": as_of.isoformat()}
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[churn, recommendations],
        asset_checks=[churn_scores_are_probabilities, recommendations_exclude_purchases],
        resources={"model_store": ModelStore()},
    )

"""The ML assets materialised through Dagster with the real DuckDBResource.

The warehouse holds the marts the assets read, generated in DuckDB (tests/ml/synthetic.py:
orders, lines, web events, identifiers, catalogue); the same assets run on marts built by the
real ingestion and dbt pipeline in test_backtest_cli.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster_duckdb import DuckDBResource

from tests.ml import synthetic

ROOT = Path(__file__).resolve().parents[2]


def materialise(
    warehouse: Path,
    models: Path,
    churn_config: dict | None = None,
    selection: list[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    from orchestration.defs.ml import assets as ml

    run_config = {"ops": {"churn": {"config": churn_config}}} if churn_config else None
    return dg.materialize(
        [
            ml.churn,
            ml.recommendations,
            ml.churn_scores_are_probabilities,
            ml.recommendations_exclude_purchases,
        ],
        resources={
            "duckdb": DuckDBResource(database=str(warehouse)),
            "model_store": ml.ModelStore(path=str(models)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        selection=selection,
    )


def metadata_by_asset(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    return {
        event.event_specific_data.materialization.asset_key.to_user_string(): {
            k: getattr(v, "value", v)
            for k, v in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ml_assets") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        synthetic.build(con, customers=600, seed=9)
    return path


def test_ml_assets_materialise_scores_recommendations_and_metadata(
    warehouse: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    result = materialise(warehouse, models)
    assert result.success
    metadata = metadata_by_asset(result)
    assert set(metadata) == {
        "ml/churn_model",
        "ml/churn_scores",
        "ml/recommendations",
        "ml/product_associations",
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        last_order = con.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    model_meta = metadata["ml/churn_model"]
    # "Today" is the day after the data's last order, not the wall clock.
    assert model_meta["as_of"] == (last_order + dt.timedelta(days=1)).isoformat()
    for key in ("auc", "pr_auc", "brier", "training_rows", "positive_rate"):
        assert isinstance(model_meta[key], int | float), key
    assert 0.5 < model_meta["auc"] <= 1 and 0 < model_meta["brier"] < 0.5
    assert model_meta["validation_scheme"].startswith("out of time")
    assert "| decile |" in model_meta["lift_by_decile"]
    assert "| bin_range |" in model_meta["calibration"]
    assert model_meta["uses_web_events"] is True
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 and all(check.passed for check in checks)

    saved = json.loads((models / "churn" / "latest.json").read_text())["version"]
    assert metadata["ml/churn_scores"]["model_version"] == saved
    artefact_meta = json.loads((models / "churn" / saved / "metadata.json").read_text())
    assert artefact_meta["sklearn_version"] and artefact_meta["training_window"]["labels"]
    assert artefact_meta["features"][-1] == "btyd_expected_purchases"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        scores = con.execute("select * from ml.churn_scores").df()
        eligible = con.execute(
            "select count(distinct customer_id) from marts.fct_orders where is_purchase"
        ).fetchone()[0]
        assert len(scores) == eligible == metadata["ml/churn_scores"]["dagster/row_count"]
        assert scores["score"].between(0, 1).all()
        assert (scores["predicted_value_90d"] >= 0).all()
        assert set(scores["model_version"]) == {saved}
        recs, customers, top_rank = con.execute(
            "select count(*), count(distinct customer_id), max(rank) from ml.recommendations"
        ).fetchone()
        # Every customer of dim_customers, cold ones included, gets k recommendations.
        assert customers == con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        assert top_rank == 10 and recs == 10 * customers
        columns = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'ml' and table_name = 'product_associations' "
                "order by ordinal_position"
            ).fetchall()
        ]
        assert columns == ["sku", "related_sku", "score", "support"]

    # A second run replaces the tables rather than appending to them, and scores with the
    # model it keeps: trained for the same day, well inside retrain_after_days.
    again = materialise(warehouse, models)
    assert again.success
    kept = metadata_by_asset(again)["ml/churn_model"]
    assert kept["trained"] is False and saved in kept["reason"]
    assert metadata_by_asset(again)["ml/churn_scores"]["model_version"] == saved
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ml.churn_scores").fetchone()[0] == eligible

    # The scores alone (one asset of the churn step): scored with the kept model, which is
    # neither retrained nor recorded, even when the config would retrain it.
    from orchestration.defs.ml.assets import CHURN_SCORES

    alone = materialise(warehouse, models, {"retrain_after_days": 0}, selection=[CHURN_SCORES])
    assert alone.success
    assert set(metadata_by_asset(alone)) == {"ml/churn_scores"}
    assert metadata_by_asset(alone)["ml/churn_scores"]["model_version"] == saved


def test_churn_model_is_retrained_when_old_or_asked(warehouse: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        last_order = con.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    week_before = (last_order + dt.timedelta(days=1 - 7)).isoformat()
    first = metadata_by_asset(materialise(warehouse, models, {"as_of": week_before}))
    version = first["ml/churn_model"]["model_version"]
    # six days later the model stands; seven days later it is retrained
    six_days = (last_order + dt.timedelta(days=1 - 1)).isoformat()
    kept = metadata_by_asset(materialise(warehouse, models, {"as_of": six_days}))
    assert kept["ml/churn_model"]["trained"] is False
    assert kept["ml/churn_scores"]["model_version"] == version
    later = metadata_by_asset(
        materialise(warehouse, models, {"as_of": (last_order + dt.timedelta(days=1)).isoformat()})
    )
    assert later["ml/churn_model"]["model_version"] != version
    assert later["ml/churn_scores"]["model_version"] == later["ml/churn_model"]["model_version"]
    # retrain_after_days: 0 retrains at once, for the same day
    forced = metadata_by_asset(
        materialise(
            warehouse,
            models,
            {"as_of": (last_order + dt.timedelta(days=1)).isoformat(), "retrain_after_days": 0},
        )
    )
    assert "model_version" in forced["ml/churn_model"]
    assert "trained" not in forced["ml/churn_model"]


def test_definitions_wire_ml_assets_downstream_of_the_marts() -> None:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in ("churn_model", "churn_scores", "recommendations", "product_associations"):
        node = graph.get(dg.AssetKey(["ml", key]))
        assert node.group_name == "ml"
        assert dg.AssetKey(["marts", "fct_orders"]) in node.parent_keys
    scores = graph.get(dg.AssetKey(["ml", "churn_scores"]))
    assert dg.AssetKey(["ml", "churn_model"]) in scores.parent_keys


def test_dbt_sources_map_to_the_ml_assets() -> None:
    """Audiences selecting from source('ml', ...) must land downstream of these assets."""
    from orchestration.defs.transform.translator import CdpDbtTranslator

    spec = yaml.safe_load((ROOT / "dbt_project/models/ml/_ml__sources.yml").read_text())
    (source,) = spec["sources"]
    assert source["name"] == "ml" and source["schema"] == "ml"
    translator = CdpDbtTranslator()
    keys = {
        table["name"]: translator.get_asset_key(
            {
                "resource_type": "source",
                "source_name": "ml",
                "name": table["name"],
                "meta": table["meta"],
                "config": {"meta": table["meta"]},
                "fqn": ["omnicdp", "ml", "ml", table["name"]],
            }
        )
        for table in source["tables"]
    }
    assert keys == {
        name: dg.AssetKey(["ml", name])
        for name in ("churn_scores", "recommendations", "product_associations")
    }


def test_recommendations_check_fails_when_a_bought_product_is_recommended(
    warehouse: Path, tmp_path: Path
) -> None:
    from orchestration.defs.ml import assets as ml

    instance = dg.DagsterInstance.ephemeral()
    assets = [ml.recommendations, ml.recommendations_exclude_purchases]
    resources = {
        "duckdb": DuckDBResource(database=str(warehouse)),
        "model_store": ml.ModelStore(path=str(tmp_path / "models")),
    }
    first = dg.materialize(assets, resources=resources, instance=instance)
    assert first.success and first.get_asset_check_evaluations()[0].passed
    as_of = metadata_by_asset(first)["ml/recommendations"]["as_of"]
    with duckdb.connect(str(warehouse)) as con:
        # Overwrite one recommendation with a product its customer bought before as_of.
        customer_id, sku = con.execute(
            """
            select lines.customer_id, lines.sku
            from marts.fct_order_lines as lines
            join marts.fct_orders as orders using (order_id)
            where lines.quantity > 0 and orders.is_purchase and not orders.is_cancelled
                and lines.order_date < ?
            order by all
            limit 1
            """,
            [as_of],
        ).fetchone()
        con.execute(
            "update ml.recommendations set sku = ? where customer_id = ? and rank = 1",
            [sku, customer_id],
        )
    check_only = dg.materialize(
        assets,
        resources=resources,
        instance=instance,
        selection=dg.AssetSelection.checks(ml.recommendations_exclude_purchases),
        raise_on_error=False,
    )
    [evaluation] = check_only.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["already_bought"].value == 1

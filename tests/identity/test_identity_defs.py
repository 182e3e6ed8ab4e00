"""The identity assets' wiring: between the dbt models, in the DuckDB pool, pure helpers pure."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]


def test_identity_probabilistic_links_sits_between_dbt_models(env: None) -> None:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    links = dg.AssetKey(["intermediate", "identity_probabilistic_links"])
    assert (
        dg.AssetKey(["intermediate", "int_identity_components_deterministic"])
        in graph.get(links).parent_keys
    )
    assert links in graph.get(dg.AssetKey(["intermediate", "int_identity_edges"])).parent_keys
    quality = graph.get(dg.AssetKey(["marts", "identity_quality"]))
    assert dg.AssetKey(["intermediate", "int_identity_source_records"]) in quality.parent_keys


def test_identity_assets_use_the_duckdb_pool() -> None:
    from orchestration.defs.identity.assets import identity_probabilistic_links, identity_quality

    assert identity_probabilistic_links.op.pool == "duckdb"
    assert identity_quality.op.pool == "duckdb"


def test_identity_quality_without_ground_truth_passes(tmp_path: Path) -> None:
    from dagster_duckdb import DuckDBResource

    from orchestration.defs.identity.assets import GroundTruth, identity_quality

    result = dg.materialize(
        [identity_quality],
        resources={
            "duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")),
            "ground_truth": GroundTruth(
                path=str(tmp_path / "missing"), env_var="CDP_TEST_NO_SUCH_VAR"
            ),
        },
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert (
        event.event_specific_data.materialization.metadata["ground_truth"].value
        == "no ground truth"
    )


def test_identity_helpers_do_not_import_dagster() -> None:
    for path in (ROOT / "orchestration/identity").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            assert not any(m.split(".")[0] in {"dagster", "dagster_duckdb"} for m in modules), path
            assert not any(m.startswith("orchestration.defs") for m in modules), path

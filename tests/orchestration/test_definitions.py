from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.ingestion.contract import SOURCES

ROOT = Path(__file__).resolve().parents[2]


def _defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs()


def test_definitions_load_with_one_ingestion_asset_per_source(env: None) -> None:
    graph = _defs().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {f"raw/{s}" for s in SOURCES} <= keys
    for source in SOURCES:
        node = graph.get(dg.AssetKey(["raw", source]))
        assert node.group_name == "ingestion"
        assert node.partitions_def is not None


def test_every_duckdb_writer_is_in_the_duckdb_pool(env: None) -> None:
    defs = _defs()
    for assets_def in defs.assets or []:
        if "duckdb" in {k for spec in assets_def.specs for k in spec.kinds}:
            assert assets_def.op.pool == "duckdb", assets_def.keys


def test_ingestion_assets_have_blocking_checks(env: None) -> None:
    by_key = {key: a for a in _defs().assets or [] for key in a.keys}
    for source in SOURCES:
        checks = {c.name: c for c in by_key[dg.AssetKey(["raw", source])].check_specs}
        assert checks["great_expectations"].blocking
        assert checks["quarantine_rate"].blocking


def test_landing_sensor_is_registered(env: None) -> None:
    assert _defs().resolve_sensor_def("landing_files_sensor") is not None


def test_resources_read_paths_from_env_vars() -> None:
    text = (ROOT / "orchestration/defs/resources.py").read_text()
    assert 'dg.EnvVar("DUCKDB_PATH")' in text and 'dg.EnvVar("LANDING_DIR")' in text


def test_pure_packages_do_not_import_dagster_or_orchestration() -> None:
    offenders = []
    for package in ("ml", "activations", "datagen", "orchestration/ingestion"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    banned = {"dagster", "dagster_dbt", "dagster_duckdb"}
                    # datagen may read the landing contract (pure data); ml/ and activations/
                    # stay independent of the orchestration package altogether.
                    if package in ("ml", "activations"):
                        banned.add("orchestration")
                    if top in banned:
                        offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_loading_the_code_location_imports_no_ml_library(env: None) -> None:
    # Every run worker, sensor tick and dbt step loads the definitions; scikit-learn, skops and
    # scipy cost about 2 s of CPU to import and only the ML runs need them.
    probe = (
        "import sys\n"
        "from orchestration.definitions import defs\n"
        "defs().resolve_asset_graph()\n"
        "print(sorted(m for m in ('sklearn', 'skops', 'scipy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_the_workspace_validates_without_a_code_location_name_warning(
    env: None, tmp_path: Path
) -> None:
    # dg derives the project's code location name from the checkout folder unless
    # pyproject.toml names it; a mismatch with workspace.yaml logged a warning on every load
    # (53 in one `dagster definitions validate`, hundreds an hour under `make dev`).
    # The CLI opens the instance at $DAGSTER_HOME, which a fresh checkout does not have
    # (`make dev` creates it): give it one of its own with the shipped instance config.
    shutil.copy(ROOT / "orchestration" / "dagster.yaml", tmp_path / "dagster.yaml")
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "does not match the name" not in done.stderr + done.stdout


def test_audiences_that_read_ml_output_are_built_after_it_and_the_others_with_the_marts(
    env: None,
) -> None:
    from orchestration.defs.transform.assets import dbt_audiences, dbt_models

    graph = _defs().resolve_asset_graph()
    audiences = {key for key in graph.get_all_asset_keys() if key.path[0] == "audiences"}
    ml = {key for key in graph.get_all_asset_keys() if key.path[0] == "ml"}
    reads_ml = {key for key in audiences if graph.get_ancestor_asset_keys(key) & ml}
    assert reads_ml and audiences - reads_ml
    assert set(dbt_audiences.keys) == reads_ml
    assert audiences - reads_ml <= set(dbt_models.keys)


def test_no_ml_audience_asset_when_no_audience_reads_ml_output() -> None:
    import json

    from orchestration.defs.transform import assets
    from orchestration.defs.transform.project import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    assert assets._has_ml_audiences(manifest)
    # A project whose audiences read no ML output: the ML sources and everything built on them
    # are gone.
    gone = {unique_id for unique_id, s in manifest["sources"].items() if s["source_name"] == "ml"}
    frontier = list(gone)
    while frontier:
        for child in manifest["child_map"].get(frontier.pop(), []):
            if child not in gone:
                gone.add(child)
                frontier.append(child)
    for section in ("nodes", "sources", "parent_map", "child_map"):
        manifest[section] = {k: v for k, v in manifest[section].items() if k not in gone}
    for section in ("parent_map", "child_map"):
        for unique_id, linked in manifest[section].items():
            manifest[section][unique_id] = [u for u in linked if u not in gone]
    assert not any(uid.startswith("model.omnicdp.aud_newsletter") for uid in manifest["nodes"])
    assert not assets._has_ml_audiences(manifest)

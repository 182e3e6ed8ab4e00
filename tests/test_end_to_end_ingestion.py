"""Generator → ingestion through Dagster: quarantine matches what the generator injected."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

import datagen
from orchestration.runner import run_pipeline


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> datagen.GenerationSummary:
    out = tmp_path_factory.mktemp("demo")
    return datagen.generate(
        out, customers=1500, days=45, seed=7, end_date=dt.date(2026, 10, 31), error_rate=0.01
    )


def _quarantine_by_source(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for source, reason, n in con.execute(
        "select source, reason, count(*) from quarantine.rejected_rows group by all"
    ).fetchall():
        found.setdefault(source, {})[reason] = n
    return found


def test_generated_data_loads_with_exactly_the_injected_defects_quarantined(
    generated: datagen.GenerationSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "")
    warehouse = tmp_path / "w.duckdb"
    result = run_pipeline(Path(generated.landing_dir), warehouse, include_downstream=False)
    assert result.success, [s.error for s in result.stages if not s.success]

    injected = json.loads((Path(generated.truth_dir) / "injected_defects.json").read_text())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert _quarantine_by_source(con) == {s: r for s, r in injected.items() if r}
        for source, written in generated.rows.items():
            loaded = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
            assert loaded == written - sum(injected.get(source, {}).values()), source


def test_dropping_the_same_file_twice_loads_it_once(
    generated: datagen.GenerationSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "")
    landing = tmp_path / "landing"
    shutil.copytree(generated.landing_dir, landing)
    warehouse = tmp_path / "w.duckdb"
    assert run_pipeline(landing, warehouse, include_downstream=False).success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = con.execute(
            "select count(*), sum(hash(order_id)) from raw.online_orders"
        ).fetchone()

    first_day = sorted((landing / "online_orders").iterdir())[0]
    original = next(first_day.iterdir())
    shutil.copy(original, first_day / ("resent_" + original.name))
    later_day = landing / "online_orders" / "2026-11-01"
    later_day.mkdir()
    shutil.copy(original, later_day / original.name)

    second = run_pipeline(landing, warehouse, include_downstream=False)
    assert second.success
    orders_stage = next(s for s in second.stages if s.name == "raw/online_orders")
    assert orders_stage.metadata["rows_loaded"] == 0
    assert len(orders_stage.metadata["files_skipped_as_duplicates"]) == 2
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert (
            con.execute("select count(*), sum(hash(order_id)) from raw.online_orders").fetchone()
            == before
        )

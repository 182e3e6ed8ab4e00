"""The benchmark's pandas yardstick computes exactly what the dbt lifecycle models compute.

`make bench` claims dbt is faster than pandas *for the same results*; this guards the second
half on a small generated history long enough to reach every stage (prospect to churned,
reactivated included): raw tables loaded with the bare loader, `dbt run` of
`+rpt_revenue_contribution` as of the last day, then the pandas frames against the dbt tables.
Takes under a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR
from tests.benchmarks._load import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 5, 31)


def _pandas_lifecycle() -> ModuleType:
    return load_benchmark("pandas_lifecycle")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datagen
    from orchestration.ingestion.contract import SOURCES
    from orchestration.ingestion.loader import load_partitions, partition_dates

    root = tmp_path_factory.mktemp("pandas_lifecycle")
    datagen.generate(root / "demo", customers=500, days=400, seed=5, end_date=AS_OF)
    landing = root / "demo" / "landing"
    path = root / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for source in SOURCES:
            # Behaviour events only add device links to identity; both sides read the same
            # fct_orders either way, and loading 400 days of them is a third of the test's time.
            dates = [] if source == "web_events" else partition_dates(landing, source)
            load_partitions(con, landing, source, dates)
    result = subprocess.run(
        [
            DBT_EXECUTABLE,
            "run",
            "--select",
            "+rpt_revenue_contribution",
            "--vars",
            json.dumps({"as_of_date": AS_OF.isoformat()}),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "DUCKDB_PATH": str(path), "DBT_TARGET_PATH": str(root / "target")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return path


def test_pandas_outputs_equal_the_dbt_models(warehouse: Path) -> None:
    pandas_lifecycle = _pandas_lifecycle()
    result = pandas_lifecycle.run(warehouse)

    assert result["equal"] is True
    assert result["as_of_date"] == AS_OF.isoformat()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stages = dict(
            con.execute(
                "select lifecycle_stage, count(*) from intermediate.int_customers_lifecycle_staged "
                "group by all"
            ).fetchall()
        )
        tiers = {
            t
            for (t,) in con.execute(
                "select distinct value_tier from intermediate.int_customers_rfm_scored"
            ).fetchall()
        }
    # Every branch of the stage rule and of the tiers is exercised, so "equal" covers them all.
    assert set(stages) == {
        "prospect",
        "new",
        "active",
        "at_risk",
        "dormant",
        "churned",
        "reactivated",
    }, stages
    assert {"top", "high", "medium", "low"} <= tiers
    assert result["rows"]["int_customers_lifecycle_staged"] == sum(stages.values())
    assert result["rows"]["rpt_revenue_contribution"] > 0


def test_a_single_wrong_value_is_reported_with_its_key(warehouse: Path) -> None:
    pandas_lifecycle = _pandas_lifecycle()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ours = pandas_lifecycle.compute(con, AS_OF)
        theirs = pandas_lifecycle.dbt_outputs(con)
    rfm = ours["int_customers_rfm_scored"]
    customer = rfm.loc[0, "customer_id"]
    rfm.loc[0, "rfm_monetary_score"] = rfm.loc[0, "rfm_monetary_score"] % 5 + 1
    ours["rpt_revenue_contribution"].loc[0, "revenue_all_time"] += 0.02

    problems = pandas_lifecycle.differences(ours, theirs)

    assert len(problems) == 2, problems
    assert problems[0].startswith("int_customers_rfm_scored.rfm_monetary_score: 1 of")
    assert customer in problems[0]
    assert problems[1].startswith("rpt_revenue_contribution.revenue_all_time: 1 of")
    with pytest.raises(AssertionError, match="rfm_monetary_score"):
        pandas_lifecycle.assert_same(ours, theirs)


def _purchase_days_written(warehouse: Path) -> tuple:
    """(distinct refreshed_at, earliest refreshed_at, rows) of the purchase days."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select count(distinct refreshed_at), min(refreshed_at), count(*) "
            "from intermediate.int_customer_purchase_days"
        ).fetchone()


def test_the_timed_dbt_run_computes_every_customer_as_pandas_does(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warehouse already holds the models (the fixture's run), so an incremental run would
    # recompute nobody's purchase days: the timed run must rebuild them all, as pandas does.
    bench = load_benchmark("bench_pipeline")
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    monkeypatch.setenv("DUCKDB_PATH", str(copy))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    _, built_at, rows = _purchase_days_written(warehouse)

    timed = bench.stage_dbt_cli({"models": list(bench.PANDAS_MODELS), "as_of": AS_OF.isoformat()})

    assert timed["model_seconds"] > 0
    versions, rewritten_at, rewritten_rows = _purchase_days_written(copy)
    assert (versions, rewritten_rows) == (1, rows)
    assert rewritten_at > built_at

"""The `nightly_build` job and its schedule, launched the way the schedule launches it
(`execute_job` on the reconstructable job, with the job's own executor) on a warehouse whose
ingestion ran: every selected asset is built with its checks passing, nothing is ingested or
sent, and a second night after a new day lands rebuilds on the incremental path."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest


def nightly_build_job() -> dg.JobDefinition:
    from orchestration.definitions import defs

    return defs().resolve_job_def("nightly_build")


def _launch(instance: dg.DagsterInstance) -> dg.ExecuteJobResult:
    return dg.execute_job(
        dg.reconstructable(nightly_build_job),
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )


def _ingest(landing: Path, warehouse: Path) -> None:
    from orchestration.runner import run_pipeline

    result = run_pipeline(landing, warehouse, include_downstream=False)
    failed = [f"{s.name}: {s.error}" for s in result.stages if not s.success]
    assert not failed, failed


def _selected_keys() -> set[dg.AssetKey]:
    from orchestration.defs.nightly.jobs import nightly_selection

    return set(nightly_selection.resolve(nightly_build_job().asset_layer.asset_graph))


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """150 days ingested (enough for a churn model with a 90-day horizon), one nightly build; then the last day lands, is ingested, and the
    nightly build runs again."""
    import datagen
    from orchestration.runner import instance_for_cli

    root = tmp_path_factory.mktemp("nightly")
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    datagen.generate(str(root / "demo"), customers=800, days=150, seed=11, end_date=end)
    generated, landing = root / "demo" / "landing", root / "landing"
    for source_dir in generated.iterdir():
        for date_dir in source_dir.iterdir():
            if date_dir.name != end.isoformat():
                (landing / source_dir.name).mkdir(parents=True, exist_ok=True)
                (landing / source_dir.name / date_dir.name).symlink_to(date_dir)
    warehouse = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ACTIVATION_MODE", raising=False)
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        mp.setenv("ACTIVATION_PREVIEW_DIR", str(root / "previews"))
        mp.setenv("MODEL_DIR", str(root / "models"))
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        _ingest(landing, warehouse)
        with instance_for_cli() as instance:
            first = _launch(instance)
            with duckdb.connect(str(warehouse), read_only=True) as con:
                orders_after_first = con.execute(
                    "select count(*) from marts.fct_orders"
                ).fetchone()[0]
            for source_dir in generated.iterdir():
                if (source_dir / end.isoformat()).is_dir():
                    (landing / source_dir.name / end.isoformat()).symlink_to(
                        source_dir / end.isoformat()
                    )
            _ingest(landing, warehouse)
            second = _launch(instance)
            yield {
                "first": first,
                "second": second,
                "warehouse": warehouse,
                "orders_after_first": orders_after_first,
            }


def test_the_job_selects_every_unpartitioned_asset_but_the_campaigns(env: None) -> None:
    graph = nightly_build_job().asset_layer.asset_graph
    selected = _selected_keys()
    groups = {graph.get(key).group_name for key in selected}
    assert {"staging", "intermediate", "marts", "ml", "audiences"} <= groups
    assert not {"ingestion", "activation"} & groups
    assert dg.AssetKey(["ml", "churn_scores"]) in selected
    assert dg.AssetKey(["audiences", "aud_newsletter_daily"]) in selected
    assert not any(key.path[0] in ("raw", "activation") for key in selected)


@pytest.mark.parametrize("phase", ["first", "second"])
def test_a_night_builds_every_selected_asset_and_no_error_check_fails(nights, phase) -> None:
    result = nights[phase]
    assert result.success
    built = {
        event.asset_key
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert built == _selected_keys()
    checks = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    # Warn-severity tests (orphan lines of quarantined orders) may fail; an error may not.
    failed = [
        (check.asset_key.to_user_string(), check.check_name)
        for check in checks
        if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert checks and not failed, failed
    # Every check of the job's assets ran, once: the dbt steps (the job splits the dbt models
    # in two around Splink) run the tests whose models are built in the step or upstream of it
    # ("buildable"), so no test that reads models of two steps is lost or run twice.
    evaluated = sorted((check.asset_key, check.check_name) for check in checks)
    expected = sorted(
        (key.asset_key, key.name)
        for key in nightly_build_job().asset_layer.asset_graph.asset_check_keys
    )
    assert evaluated == expected


def test_a_build_of_one_model_runs_no_test_that_reads_a_model_it_does_not_build(
    nights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fct_orders alone, with dim_customers out of step with it (as after new orders, until
    the nightly rebuilds dim_customers): the test comparing the two does not run, fct_orders'
    own tests do; with dbt's default indirect selection set by hand, the same run fails."""
    from orchestration.definitions import defs

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(nights["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.dim_customers set order_count = order_count + 1 "
            "where customer_id = (select min(customer_id) from marts.dim_customers)"
        )
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    definitions = defs()

    def build(target: Path) -> tuple[bool, dict[str, str]]:
        monkeypatch.setenv("DBT_TARGET_PATH", str(target))
        result = dg.materialize(
            list(definitions.assets or []),
            resources=dict(definitions.resources or {}),
            selection="marts/fct_orders",
            raise_on_error=False,
        )
        [run_results] = target.glob("*/run_results.json")
        statuses = {
            r["unique_id"].split(".")[2]: r["status"]
            for r in json.loads(run_results.read_text())["results"]
        }
        return result.success, statuses

    monkeypatch.delenv("DBT_INDIRECT_SELECTION", raising=False)
    success, statuses = build(tmp_path / "buildable")
    assert success
    assert statuses["fct_orders"] == "success"
    assert statuses["unique_for_rewritten_keys_fct_orders_order_id"] == "pass"
    assert "assert_dim_customers_order_counts_match_fct_orders" not in statuses

    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "eager")
    success, statuses = build(tmp_path / "eager")
    assert not success
    assert statuses["assert_dim_customers_order_counts_match_fct_orders"] == "fail"


def test_the_second_night_adds_the_new_day_and_sends_nothing(nights) -> None:
    with duckdb.connect(str(nights["warehouse"]), read_only=True) as con:
        orders = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
        scored, customers_with_orders = con.execute(
            "select (select count(*) from ml.churn_scores), "
            "(select count(distinct customer_id) from marts.fct_orders where is_purchase)"
        ).fetchone()
        audiences = con.execute("select count(*) from audiences.aud_newsletter_daily").fetchone()[0]
        # Campaigns are their own jobs: the build plans and sends nothing, so the activation
        # ledger is not even created.
        activation_tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'activation'"
        ).fetchone()[0]
    assert orders > nights["orders_after_first"]
    assert 0 < scored <= customers_with_orders
    assert audiences > 0
    assert activation_tables == 0


def test_the_schedule_is_off_until_turned_on_and_reads_its_time_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.defs.nightly.jobs import DEFAULT_CRON, nightly_build_schedule

    monkeypatch.delenv("NIGHTLY_BUILD_CRON", raising=False)
    monkeypatch.delenv("NIGHTLY_BUILD_TIMEZONE", raising=False)
    schedule = nightly_build_schedule()
    assert schedule.cron_schedule == DEFAULT_CRON
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "nightly_build"
    monkeypatch.setenv("NIGHTLY_BUILD_CRON", "30 3 * * *")
    monkeypatch.setenv("NIGHTLY_BUILD_TIMEZONE", "Asia/Shanghai")
    moved = nightly_build_schedule()
    assert (moved.cron_schedule, moved.execution_timezone) == ("30 3 * * *", "Asia/Shanghai")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NIGHTLY_BUILD_CRON", "0 25 * *"), ("NIGHTLY_BUILD_TIMEZONE", "Mars/Base")],
)
def test_a_bad_schedule_setting_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    from orchestration.defs.nightly.jobs import nightly_build_schedule

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=re.escape(f"{variable}='{value}'")):
        nightly_build_schedule()

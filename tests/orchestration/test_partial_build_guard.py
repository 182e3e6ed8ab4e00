"""A run that builds only some dbt models on a warehouse without their parents (a campaign
launched before the first nightly build) fails before dbt starts, naming the tables it lacks and
the job that builds them; the real campaign jobs, on a warehouse with only the raw tables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest


def _failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    failures = [event for event in result.all_events if event.is_step_failure]
    assert len(failures) == 1, [event.message for event in failures]
    return failures[0]


@pytest.mark.parametrize(
    ("campaign", "step", "missing"),
    [
        # Reads ML output: built by dbt_audiences after the ML assets.
        (
            "aud_winback_at_risk",
            "dbt_audiences",
            "audiences.int_audience_recommendations",
        ),
        # Reads no ML output: built by dbt_models with the marts.
        ("aud_cart_abandon", "dbt_models", "marts.dim_customers"),
    ],
)
def test_a_campaign_before_the_first_nightly_build_names_what_is_missing(
    env: None, instance: dg.DagsterInstance, warehouse: Path, campaign: str, step: str, missing: str
) -> None:
    from orchestration.definitions import defs

    job = defs().resolve_job_def(f"activate__{campaign}")
    result = job.execute_in_process(instance=instance, raise_on_error=False)

    assert not result.success
    failure = _failure(result)
    assert failure.step_key == step
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None, failure.step_failure_data.error
    assert "`nightly_build`" in user_failure.description
    assert f"audiences.{campaign} reads" in user_failure.description
    missing_parents = user_failure.metadata["missing_parents"].value
    assert missing in missing_parents[f"audiences.{campaign}"]
    # dbt never started: nothing was built, so nothing half-built either.
    assert not result.get_asset_materialization_events()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(audiences,)] = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'audiences'"
        ).fetchall()
    assert audiences == 0

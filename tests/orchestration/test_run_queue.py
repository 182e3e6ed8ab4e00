"""Runs that read or rebuild the warehouse do not interleave: with the instance settings of
`orchestration/dagster.yaml`, the run queue starts runs of `nightly_build`, `refresh_triggers`,
every campaign's job and the landing sensor's ingestion one at a time, in the order they were
queued but loads first and the nightly build next, while provider-event ingestion carries no
such tag and is not held back by it.

The tags come from the real definitions and the real sensor; the dequeue decisions are the real
queue daemon's (`QueuedRunCoordinatorDaemon.run_iteration`). Only the run launcher is Dagster's
recording test launcher: what is under test is which runs the queue lets start, not the runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.test_utils import (
    create_run_for_test,
    create_test_daemon_workspace_context,
    instance_for_test,
)
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from orchestration.concurrency import EXCLUSIVE, WAREHOUSE_TAG
from orchestration.defs.ingestion.sensors import landing_files_sensor
from orchestration.defs.resources import LandingZone

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job_tags() -> dict[str, dict[str, str]]:
    """Run tags of every job of the code location, by job name."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUCKDB_PATH", "unused.duckdb")
        patch.setenv("LANDING_DIR", "unused")
        from orchestration.definitions import defs

        definitions = defs()
        return {
            job.name: dict(job.run_tags)
            for job in definitions.resolve_all_job_defs()
            if not job.name.startswith("__")
        }


def _landing_run_tags(landing: Path, instance: dg.DagsterInstance) -> list[dict[str, str]]:
    context = dg.build_sensor_context(
        instance=instance, resources={"landing": LandingZone(path=str(landing))}
    )
    return [dict(request.tags) for request in landing_files_sensor(context).run_requests]


@contextmanager
def queued_instance() -> Iterator[dg.DagsterInstance]:
    settings = yaml.safe_load((ROOT / "orchestration/dagster.yaml").read_text())
    overrides = {
        **settings,
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    with instance_for_test(overrides=overrides) as instance:
        yield instance


def _dequeue(instance: dg.DagsterInstance) -> set[str]:
    """One pass of the run queue daemon; the ids of every run launched so far."""
    with create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as context:
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(context))
    return {run.run_id for run in instance.run_launcher.queue()}


def _run(
    instance: dg.DagsterInstance, job_name: str, tags: dict[str, str], status: dg.DagsterRunStatus
) -> dg.DagsterRun:
    # Queued runs name the code location they come from, as runs launched by a schedule do.
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("cdp"), "__repository__")
    return create_run_for_test(
        instance,
        job_name=job_name,
        status=status,
        tags=tags,
        remote_job_origin=RemoteJobOrigin(location, job_name),
    )


def _finish(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run.run_id
    )


def test_warehouse_jobs_and_landing_loads_are_exclusive(
    job_tags: dict[str, dict[str, str]], landing: Path, instance: dg.DagsterInstance
) -> None:
    campaigns = [name for name in job_tags if name.startswith("activate__")]
    assert campaigns, sorted(job_tags)
    for name in ["nightly_build", "refresh_triggers", *campaigns]:
        assert job_tags[name].get(WAREHOUSE_TAG) == EXCLUSIVE, name
    loads = _landing_run_tags(landing, instance)
    assert loads
    assert all(tags.get(WAREHOUSE_TAG) == EXCLUSIVE for tags in loads)
    # Provider events only append events and suppressions: their ingestion is not held.
    assert WAREHOUSE_TAG not in job_tags["ingest_provider_events"]


def test_runs_queued_during_the_nightly_build_start_after_it_one_at_a_time(
    job_tags: dict[str, dict[str, str]], landing: Path, instance: dg.DagsterInstance
) -> None:
    campaign = next(name for name in job_tags if name.startswith("activate__"))
    [load_tags, *_] = _landing_run_tags(landing, instance)
    with queued_instance() as queue:
        nightly = _run(
            queue, "nightly_build", job_tags["nightly_build"], dg.DagsterRunStatus.STARTED
        )
        # Queued in this order while the nightly build runs: a campaign, a trigger refresh, a
        # load of late files, a second nightly build (a retry carries its run's tags), another
        # campaign run, and provider events.
        queued = {
            label: _run(queue, name, tags, dg.DagsterRunStatus.QUEUED).run_id
            for label, name, tags in [
                ("campaign", campaign, job_tags[campaign]),
                ("refresh", "refresh_triggers", job_tags["refresh_triggers"]),
                ("load", "__ASSET_JOB", load_tags),
                ("nightly", "nightly_build", job_tags["nightly_build"]),
                ("campaign again", campaign, job_tags[campaign]),
                ("events", "ingest_provider_events", job_tags["ingest_provider_events"]),
            ]
        }
        events = queued.pop("events")

        assert _dequeue(queue) == {events}
        # Another pass changes nothing while the nightly build runs.
        assert _dequeue(queue) == {events}
        assert all(
            queue.get_run_by_id(run_id).status == dg.DagsterRunStatus.QUEUED
            for run_id in queued.values()
        )

        # Then one at a time: the load (the build should see its files), the nightly build
        # (what the campaigns read), then the rest in the order they were queued.
        running = nightly.run_id
        started = {events}
        for label in ["load", "nightly", "campaign", "refresh", "campaign again"]:
            _finish(queue, queue.get_run_by_id(running))
            started.add(queued[label])
            assert _dequeue(queue) == started, label
            assert _dequeue(queue) == started, label
            running = queued[label]

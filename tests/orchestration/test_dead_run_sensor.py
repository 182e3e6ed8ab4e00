"""`fail_runs_whose_process_died`: a STARTED run whose process is gone is reported failed (so it
stops holding the run queue and, 300 s later, the duckdb pool); a run whose process lives, one
that has not reported a process yet, one launched elsewhere and one under another run launcher
are left alone. Real runs in a real instance; the dead process is a real process that has exited."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.test_utils import create_run_for_test, instance_for_test

from orchestration.concurrency import EXCLUSIVE_RUN_TAGS
from orchestration.defs.housekeeping.sensors import GRPC_INFO_TAG, fail_runs_whose_process_died

LOCAL = {GRPC_INFO_TAG: json.dumps({"host": "localhost", "socket": "/tmp/code-server"})}


def _exited_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started_run(
    instance: dg.DagsterInstance, pid: int | None, tags: dict[str, str] | None = None
) -> dg.DagsterRun:
    run = create_run_for_test(
        instance,
        job_name="nightly_build",
        status=dg.DagsterRunStatus.STARTED,
        tags={**EXCLUSIVE_RUN_TAGS, **(LOCAL if tags is None else tags)},
    )
    if pid is not None:
        # What the run worker reports when it starts (DefaultRunLauncher).
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).",
            run,
            EngineEventData(metadata={"pid": dg.MetadataValue.text(str(pid))}),
        )
    return run


def _tick(instance: dg.DagsterInstance) -> str:
    result = fail_runs_whose_process_died(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)  # it never launches a run
    return result.skip_message or ""


def _status(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run.run_id).status


def test_a_run_whose_process_died_is_failed_and_the_others_are_left_alone() -> None:
    with instance_for_test() as instance:
        dead_pid = _exited_pid()
        dead = _started_run(instance, dead_pid)
        alive = _started_run(instance, os.getpid())
        not_yet = _started_run(instance, None)
        # An in-process run (`cdp run`) or one launched on another host: its pid means
        # nothing here.
        elsewhere = _started_run(instance, _exited_pid(), tags={})
        message = _tick(instance)

        assert dead.run_id in message
        assert _status(instance, dead) == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"pid {dead_pid}" in failure[-1].message
        for run in (alive, not_yet, elsewhere):
            assert _status(instance, run) == dg.DagsterRunStatus.STARTED, run.run_id
        assert _tick(instance) == "no run whose process died"


def test_other_run_launchers_are_left_to_their_own_health_checks() -> None:
    overrides = {
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    }
    with instance_for_test(overrides=overrides) as instance:
        run = _started_run(instance, _exited_pid())
        assert _tick(instance) == "no run whose process died"
        assert _status(instance, run) == dg.DagsterRunStatus.STARTED

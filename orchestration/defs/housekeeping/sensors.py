"""Fail the runs whose process is gone, so they stop holding the run queue and the duckdb pool.

When a run worker is killed while its code server lives, the code server reports the run
failed. When both go (the machine rebooted, `dagster dev` was killed, the out-of-memory killer
took the code server too), nothing does: the run stays STARTED forever, since Dagster's run
monitoring has no worker health check for the default run launcher. Such a run keeps its
`duckdb` pool slot and, as a `cdp/warehouse=exclusive` run, the run queue's only place: every
nightly build, campaign and trigger refresh after it stays queued. This sensor finds those
runs and reports them failed; the run retry policy (orchestration/dagster.yaml) then
relaunches them once, before the runs queued behind them (orchestration/concurrency.py).
"""

from __future__ import annotations

import json
import os

import dagster as dg

# Tag Dagster puts on runs launched through a code server, naming the server's host.
GRPC_INFO_TAG = ".dagster/grpc_info"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Someone else's process holds the pid: alive as far as we can tell.
        return True
    return True


def run_process_ids(instance: dg.DagsterInstance, run_id: str) -> list[int]:
    """The pids the run's own process reported ("Started process for run", "Executing steps in
    process"): engine events outside any step that carry a pid."""
    pids: set[int] = set()
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if event is None or record.step_key is not None:
            continue
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None:
            pids.add(int(getattr(pid, "value", pid)))
    return sorted(pids)


def launched_on_this_host(run: dg.DagsterRun) -> bool:
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:
        return False
    try:
        host = json.loads(info).get("host")
    except ValueError:
        return False
    return host in LOCAL_HOSTS


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, list[int]]]:
    """STARTED runs launched by the local default run launcher whose every run process is gone."""
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        # Other launchers (Docker, Kubernetes...) have worker health checks of their own, and
        # their workers' pids mean nothing here.
        return []
    found = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if not launched_on_this_host(run):
            continue
        pids = run_process_ids(instance, run.run_id)
        if pids and not any(process_alive(pid) for pid in pids):
            found.append((run, pids))
    return found


@dg.sensor(
    name="fail_runs_whose_process_died",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Reports a run failed when it is STARTED but its process no longer exists (killed, out "
        "of memory, a reboot): with the default run launcher nothing else would, and the run "
        "would hold the duckdb pool and the run queue forever. The run retry policy relaunches "
        "it once. Launches nothing itself."
    ),
)
def fail_runs_whose_process_died(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = []
    for run, pids in dead_runs(context.instance):
        message = (
            f"The process of this run (pid {', '.join(map(str, pids))}) no longer exists: it "
            "was killed or the machine restarted. Marked failed by the sensor "
            "fail_runs_whose_process_died so that the runs queued behind it can start."
        )
        # Its duckdb slot is left to free_slots_after_run_end_seconds (300 s in
        # orchestration/dagster.yaml): freed at once, the queue started a campaign queued behind
        # the crashed build before the retry daemon had queued the build's retry (measured);
        # five minutes on, the retry is queued and its priority puts it first.
        context.instance.report_run_failed(run, message)
        context.log.warning("%s: %s", run.run_id, message)
        failed.append(run.run_id)
    if failed:
        return dg.SkipReason(f"marked failed: {', '.join(failed)}")
    return dg.SkipReason("no run whose process died")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[fail_runs_whose_process_died])

"""Run the whole pipeline in-process through Dagster (used by ``cdp run`` and ``cdp demo``).

Ingestion assets are daily-partitioned and run as one single-run backfill per source over
the dates present; every other asset (unpartitioned) then runs in one more materialisation.
Runs are recorded in ``$DAGSTER_HOME`` when it is set, so ``dagster dev`` shows them later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from orchestration.ingestion.contract import SOURCES
from orchestration.ingestion.loader import partition_dates

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class StageResult:
    name: str
    seconds: float
    success: bool
    metadata: dict[str, object] = field(default_factory=dict)
    error: str | None = None


@dataclass
class PipelineResult:
    stages: list[StageResult]
    interrupted: bool = False
    """SIGINT or SIGTERM arrived: the stages after the one it arrived in were not started."""
    not_run: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.interrupted and all(s.success for s in self.stages)


@contextlib.contextmanager
def interrupt_watch() -> Iterator[Callable[[], bool]]:
    """Yields a function telling whether SIGINT or SIGTERM arrived since the block began.

    Dagster's in-process runs take both signals over while they execute: one that arrives in
    a step fails the step (and so the run), one that arrives elsewhere in the run is forgotten
    when it ends. Either way the caller would carry on with its next run, so Ctrl-C did not stop
    `cdp run`. The interpreter writes every signal it handles to the wakeup file descriptor,
    whichever Python handler is installed, so the signal is seen here in both cases.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    seen = False

    def interrupted() -> bool:
        nonlocal seen
        with contextlib.suppress(BlockingIOError):
            while data := reader.recv(64):
                seen = seen or any(n in (signal.SIGINT, signal.SIGTERM) for n in data)
        return seen

    try:
        yield interrupted
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def configure_environment(landing: Path, warehouse: Path) -> None:
    """Dagster resources and dbt's profile both read these; absolute so any cwd works."""
    os.environ["LANDING_DIR"] = str(landing.resolve())
    os.environ["DUCKDB_PATH"] = str(warehouse.resolve())
    warehouse.parent.mkdir(parents=True, exist_ok=True)


def instance_for_cli() -> dg.DagsterInstance:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text((Path(__file__).parent / "dagster.yaml").read_text())
    return dg.DagsterInstance.get()


def _metadata_values(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    values: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization and materialization.asset_key == key:
            values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return values


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            messages.append(error.message.strip())
            cause = error.cause
            while cause is not None:
                messages.append(cause.message.strip())
                cause = cause.cause
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "asset_check_evaluation", data)
            if evaluation is not None and not getattr(evaluation, "passed", True):
                messages.append(
                    f"check {evaluation.check_name} failed: {evaluation.description or ''}"
                )
    return " | ".join(m for m in messages if m)[:2000] or "run failed"


def run_pipeline(
    landing: Path,
    warehouse: Path,
    on_stage: Callable[[str, int, int], None] | None = None,
    on_result: Callable[[StageResult], None] | None = None,
    include_downstream: bool = True,
) -> PipelineResult:
    """Materialise ingestion for every date in ``landing``, then (unless
    ``include_downstream`` is false) every other asset."""
    configure_environment(landing, warehouse)
    # Imported after the environment is set: definitions resolve EnvVars at run time, but
    # building them here keeps one code path for `dagster dev` and the CLI.
    from orchestration.defs.transform.project import prepare_manifest

    # dbt models may have been edited since the last parse; a stale manifest would
    # silently run old lineage.
    prepare_manifest()
    from orchestration.definitions import defs as build_defs

    defs = build_defs()
    assets = list(defs.assets or [])
    resources = dict(defs.resources or {})
    instance = instance_for_cli()
    today = dt.datetime.now(dt.UTC).date()
    graph = defs.resolve_asset_graph()
    ingestion_keys = [dg.AssetKey(["raw", s]) for s in SOURCES]
    downstream = [
        k
        for k in graph.get_all_asset_keys()
        if k not in ingestion_keys and graph.get(k).is_materializable
    ]
    stages: list[tuple[str, list[dg.AssetKey], dict[str, str]]] = []
    for source in SOURCES:
        dates = [d for d in partition_dates(landing, source) if d <= today + dt.timedelta(days=1)]
        if not dates:
            continue
        tags = {
            "dagster/asset_partition_range_start": dates[0].isoformat(),
            "dagster/asset_partition_range_end": dates[-1].isoformat(),
        }
        stages.append((f"raw/{source}", [dg.AssetKey(["raw", source])], tags))
    if downstream and include_downstream:
        stages.append(("transform, score and plan", downstream, {}))
    results: list[StageResult] = []
    with interrupt_watch() as interrupted:
        for index, (name, keys, tags) in enumerate(stages):
            if on_stage:
                on_stage(name, index, len(stages))
            started = time.perf_counter()
            result = dg.materialize(
                assets,
                selection=keys,
                resources=resources,
                instance=instance,
                tags={"cdp/entrypoint": "cdp run", **tags},
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            stage = StageResult(
                name=name,
                seconds=time.perf_counter() - started,
                success=result.success,
                metadata=_metadata_values(result, keys[0]) if len(keys) == 1 else {},
                error=None if result.success else _failure_message(result),
            )
            results.append(stage)
            if on_result:
                on_result(stage)
            if interrupted():
                # The stage the signal arrived in stopped (or finished) as Dagster let it; the
                # ones after it are not started. Loads and dbt commit as they go, so the next
                # `cdp run` goes on from what was committed.
                return PipelineResult(
                    stages=results,
                    interrupted=True,
                    not_run=[s[0] for s in stages[index + 1 :]],
                )
    return PipelineResult(stages=results)

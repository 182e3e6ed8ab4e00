"""Launch ingestion when files land, one run per source and batch of new content."""

import json

import dagster as dg

from orchestration.concurrency import LOAD_RUN_TAGS
from orchestration.defs.resources import LandingZone
from orchestration.ingestion.watch import scan


@dg.sensor(
    name="landing_files_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Watches LANDING_DIR and launches the ingestion asset of each source that received new "
        "file content, over the range of dates touched. Run keys come from content hashes, so "
        "a file dropped twice runs once."
    ),
    asset_selection=dg.AssetSelection.groups("ingestion"),
)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZone
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    root = landing.root
    if not root.is_dir():
        return dg.SkipReason(f"LANDING_DIR {root} does not exist yet")
    next_cursor, pending = scan(root, cursor)
    requests = []
    for load in pending:
        # A load waits for a running nightly build rather than changing raw tables under it,
        # and goes before a nightly build queued with it.
        tags = {"landing/files": str(len(load.files)), **LOAD_RUN_TAGS}
        if load.first_date == load.last_date:
            request = dg.RunRequest(
                run_key=load.run_key,
                asset_selection=[dg.AssetKey(["raw", load.source])],
                partition_key=load.first_date,
                tags=tags,
            )
        else:
            request = dg.RunRequest(
                run_key=load.run_key,
                asset_selection=[dg.AssetKey(["raw", load.source])],
                tags={
                    **tags,
                    "dagster/asset_partition_range_start": load.first_date,
                    "dagster/asset_partition_range_end": load.last_date,
                },
            )
        requests.append(request)
    # The cursor is only persisted when the tick succeeds, so a crash mid-tick rescans.
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(next_cursor, separators=(",", ":"))
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[landing_files_sensor])

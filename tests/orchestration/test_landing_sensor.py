"""The landing sensor launches one run per batch of new content, never twice for the same file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg

from orchestration.defs.ingestion.sensors import landing_files_sensor
from orchestration.defs.resources import LandingZone
from tests.conftest import write


def _tick(landing: Path, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LandingZone(path=str(landing))}
    )
    return landing_files_sensor(context)


def test_first_tick_requests_each_source_over_its_date_range(landing: Path, instance) -> None:
    result = _tick(landing, instance, None)
    by_asset = {r.asset_selection[0].to_user_string(): r for r in result.run_requests}
    assert set(by_asset) == {"raw/online_orders", "raw/products"}
    orders = by_asset["raw/online_orders"]
    assert orders.tags["dagster/asset_partition_range_start"] == "2026-03-01"
    assert orders.tags["dagster/asset_partition_range_end"] == "2026-03-02"
    assert by_asset["raw/products"].partition_key == "2026-03-01"
    assert len(json.loads(result.cursor)) == 3


def test_same_file_dropped_twice_requests_nothing_more(landing: Path, instance) -> None:
    first = _tick(landing, instance, None)
    # Re-dropping the same export: copied under another name, into another date, and touched.
    src = landing / "online_orders/2026-03-02/orders.csv"
    shutil.copy(src, landing / "online_orders/2026-03-02/orders_copy.csv")
    write(landing / "online_orders/2026-03-03/orders.csv", src.read_text())
    src.touch()
    second = _tick(landing, instance, first.cursor)
    assert second.run_requests == []


def test_run_key_depends_on_content_not_cursor(landing: Path, instance) -> None:
    first = {r.run_key for r in _tick(landing, instance, None).run_requests}
    again_from_scratch = {r.run_key for r in _tick(landing, instance, None).run_requests}
    assert first == again_from_scratch


def test_new_content_requests_one_run_for_its_source(landing: Path, instance) -> None:
    first = _tick(landing, instance, None)
    write(
        landing / "online_orders/2026-03-03/late.csv",
        "order_id,ordered_at,order_total,account_id\no9,2026-03-03,1,a9\n",
    )
    second = _tick(landing, instance, first.cursor)
    [request] = second.run_requests
    assert request.asset_selection == [dg.AssetKey(["raw", "online_orders"])]
    assert request.partition_key == "2026-03-03"

"""Ingestion assets materialised through Dagster on temp DuckDB files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.conftest import write

ORDERS = dg.AssetKey(["raw", "online_orders"])
RANGE = {
    "dagster/asset_partition_range_start": "2026-03-01",
    "dagster/asset_partition_range_end": "2026-03-02",
}


def _materialize(
    instance: dg.DagsterInstance, key: dg.AssetKey, max_share: float = 0.5, tags=RANGE
):
    from orchestration.definitions import defs

    definitions = defs()
    op_name = next(a for a in definitions.assets if key in a.keys).op.name
    return dg.materialize(
        list(definitions.assets),
        selection=[key],
        resources=dict(definitions.resources),
        instance=instance,
        tags=tags,
        run_config={
            "ops": {
                op_name: {"config": {"max_quarantine_share": max_share, "min_quarantined_rows": 1}}
            }
        },
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    # A range run records one materialization per partition, all with the run's metadata.
    event = result.get_asset_materialization_events()[0]
    return {
        k: getattr(v, "value", v)
        for k, v in event.event_specific_data.materialization.metadata.items()
    }


def test_orders_asset_loads_valid_rows_and_quarantines_bad_ones(
    env, instance, warehouse: Path
) -> None:
    result = _materialize(instance, ORDERS)
    assert result.success
    metadata = _metadata(result)
    assert metadata["rows_loaded"] == 3
    assert metadata["rows_quarantined"] == 2
    assert metadata["quarantine_reasons"] == {
        "invalid_timestamp:ordered_at": 1,
        "missing_identifier": 1,
    }
    assert metadata["partitions_loaded"] == 2
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select order_id, gift_wrap from raw.online_orders order by order_id"
        ).fetchall()
        assert rows == [("o1", "yes"), ("o2", "no"), ("o4", None)]
        quarantined = con.execute(
            "select source_file, line_number, reason from quarantine.rejected_rows order by source_file"
        ).fetchall()
    assert quarantined == [
        ("online_orders/2026-03-01/orders.csv.gz", 4, "invalid_timestamp:ordered_at"),
        ("online_orders/2026-03-02/orders.csv", 3, "missing_identifier"),
    ]


def test_rerunning_the_same_dates_appends_nothing(env, instance, warehouse: Path) -> None:
    assert _materialize(instance, ORDERS).success
    second = _materialize(instance, ORDERS)
    assert second.success
    metadata = _metadata(second)
    assert metadata["partitions_unchanged"] == 2
    assert metadata["rows_loaded"] == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.online_orders").fetchone()[0] == 3
        assert con.execute("select count(*) from quarantine.rejected_rows").fetchone()[0] == 2


def test_quarantine_rate_check_blocks_a_mostly_broken_batch(env, instance) -> None:
    result = _materialize(instance, ORDERS, max_share=0.05)
    assert not result.success
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    by_name = {e.check_name: e for e in evaluations}
    assert by_name["quarantine_rate"].passed is False
    assert by_name["great_expectations"].passed is True


def test_unreadable_file_fails_the_asset_naming_the_file(env, instance, landing: Path) -> None:
    write(
        landing / "online_orders/2026-03-02/extra.csv",
        "order_id;ordered_at;order_total\n1;2026-03-02;3\n",
    )
    result = _materialize(instance, ORDERS)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "online_orders/2026-03-02/extra.csv" in message
    assert "comma-delimited" in message


def test_single_partition_run_loads_only_that_date(env, instance, warehouse: Path) -> None:
    from orchestration.definitions import defs

    definitions = defs()
    result = dg.materialize(
        list(definitions.assets),
        selection=[dg.AssetKey(["raw", "products"])],
        resources=dict(definitions.resources),
        instance=instance,
        partition_key="2026-03-01",
    )
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select sku, price, brand from raw.products order by sku"
        ).fetchall() == [
            ("p1", pytest.approx(3.5), None),
            ("p2", pytest.approx(4.0), "Acme"),
        ]

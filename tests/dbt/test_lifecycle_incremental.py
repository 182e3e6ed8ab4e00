"""Lifecycle marts built nightly (incrementally) equal the same marts built from scratch.

A small generated history is ingested once; then dbt builds the stage history and the trigger
events as of 20 June, and advances the as-of date night by night to 30 June with incremental
runs. A full refresh as of 30 June on a copy must give the same stage history row for row and
the same set of fired triggers; a rerun of the same night must change nothing; and every
trigger cause fires once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

SELECT = [
    "--select",
    "int_customer_registrations+",
    "int_customer_purchase_days+",
    "int_customers_preferences_derived",
]


def _dbt(
    warehouse: Path,
    target: Path,
    as_of: dt.date,
    *extra: str,
    select: list[str] = SELECT,
    dbt_vars: dict | None = None,
) -> None:
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "DBT_TARGET_PATH": str(target)}
    vars_ = json.dumps({"as_of_date": as_of.isoformat(), **(dbt_vars or {})})
    result = subprocess.run(
        [
            DBT_EXECUTABLE,
            "run",
            *select,
            "--vars",
            vars_,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            *extra,
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]


# The lifecycle models a change upstream of them (in fct_orders or the registrations) reaches.
LIFECYCLE = [
    "--select",
    "int_customer_purchase_days",
    "int_customer_stage_events",
    "fct_customer_stage_history",
    "int_customers_preferences_derived",
]


def _query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def _purchase_days(warehouse: Path) -> list[tuple]:
    return _query(
        warehouse,
        "select * exclude (refreshed_at) from intermediate.int_customer_purchase_days order by all",
    )


def _preferences(warehouse: Path) -> list[tuple]:
    return _query(
        warehouse,
        "select * exclude (refreshed_at) from intermediate.int_customers_preferences_derived "
        "order by all",
    )


def _history(warehouse: Path) -> list[tuple]:
    return _query(
        warehouse,
        "select customer_id, changed_on, lifecycle_stage, previous_stage, stage_change_id "
        "from marts.fct_customer_stage_history order by all",
    )


def _triggers(warehouse: Path) -> list[tuple]:
    return _query(
        warehouse,
        "select trigger_id, trigger_type, customer_id, cause_id, fired_at "
        "from marts.fct_trigger_events order by all",
    )


def _written_by_latest_run(warehouse: Path, table: str) -> tuple[int, int]:
    """(customers whose rows in `table` the latest run wrote, customers in `table`)."""
    [counts] = _query(
        warehouse,
        "select count(distinct customer_id) filter (where refreshed_at = (select "
        f"max(refreshed_at) from {table})), count(distinct customer_id) from {table}",
    )
    return counts


def _rewritten_customers(warehouse: Path) -> tuple[int, int]:
    return _written_by_latest_run(warehouse, "intermediate.int_customer_purchase_days")


def _recomputed_preferences(warehouse: Path) -> tuple[int, int]:
    return _written_by_latest_run(warehouse, "intermediate.int_customers_preferences_derived")


def _copy(warehouse: Path, folder: Path) -> Path:
    """A copy named warehouse.duckdb: views in DuckDB name their database after the file."""
    copy = folder / "warehouse.duckdb"
    copy.parent.mkdir(parents=True)
    shutil.copy(warehouse, copy)
    return copy


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import datagen
    from orchestration.runner import run_pipeline

    root = tmp_path_factory.mktemp("lifecycle")
    datagen.generate(
        str(root / "demo"), customers=1500, days=150, seed=11, end_date=dt.date(2026, 6, 30)
    )
    built = root / "built" / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        result = run_pipeline(root / "demo" / "landing", built, include_downstream=True)
    assert all(s.success for s in result.stages), [s.error for s in result.stages]

    incremental, full = _copy(built, root / "incremental"), _copy(built, root / "full")

    target = root / "target"
    _dbt(incremental, target, dt.date(2026, 6, 20), "--full-refresh")
    for day in (22, 26, 30):
        _dbt(incremental, target, dt.date(2026, 6, day))
    _dbt(full, target, dt.date(2026, 6, 30), "--full-refresh")
    return {"incremental": incremental, "full": full, "target": target}


def test_incremental_stage_history_equals_full_refresh(nightly) -> None:
    incremental, full = _history(nightly["incremental"]), _history(nightly["full"])
    assert len(full) > 1000
    assert incremental == full


def test_incremental_preferences_equal_full_refresh(nightly) -> None:
    incremental, full = _preferences(nightly["incremental"]), _preferences(nightly["full"])
    assert len(full) > 500
    assert incremental == full


def test_incremental_triggers_equal_full_refresh_and_fire_once(nightly) -> None:
    incremental, full = _triggers(nightly["incremental"]), _triggers(nightly["full"])
    assert {row[1] for row in full} >= {"first_purchase", "spend_spike", "dormancy_warning"}
    assert incremental == full
    assert len({row[0] for row in incremental}) == len(incremental)


def test_rerunning_a_night_changes_nothing(nightly) -> None:
    before_history, before_triggers = (
        _history(nightly["incremental"]),
        _triggers(nightly["incremental"]),
    )
    _dbt(nightly["incremental"], nightly["target"], dt.date(2026, 6, 30))
    assert _history(nightly["incremental"]) == before_history
    assert _triggers(nightly["incremental"]) == before_triggers


def test_a_customer_without_stage_events_leaves_the_history(nightly, tmp_path) -> None:
    # A customer merged away has no stage events any more; the pre-hook finds the customers
    # that do from the purchase days and registrations instead of computing every event.
    warehouse = _copy(nightly["incremental"], tmp_path / "departed")
    with duckdb.connect(str(warehouse)) as con:
        with_events = {
            row[0]
            for row in con.sql(
                "select distinct customer_id from intermediate.int_customer_stage_events"
            ).fetchall()
        }
        con.execute(
            "insert into marts.fct_customer_stage_history "
            "select * replace ('CMERGEDAWAY' as customer_id, 'CMERGEDAWAY:' || changed_on as "
            "stage_change_id) from marts.fct_customer_stage_history limit 2"
        )
    _dbt(warehouse, tmp_path / "target", dt.date(2026, 6, 30))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kept = {
            row[0]
            for row in con.sql(
                "select distinct customer_id from marts.fct_customer_stage_history"
            ).fetchall()
        }
    assert "CMERGEDAWAY" not in kept
    assert kept <= with_events
    assert _history(warehouse) == _history(nightly["full"])


def test_changed_orders_and_a_merge_reach_only_their_customers(nightly, tmp_path) -> None:
    # What the order models hand the lifecycle between two runs, written straight into
    # fct_orders with a later refreshed_at: customer A's orders all move to customer B (an
    # identity merge; A stays registered, so A keeps a history, now without purchases) and
    # customer C gains a purchase three weeks back (a late store file).
    warehouse = _copy(nightly["incremental"], tmp_path / "incremental")
    with duckdb.connect(str(warehouse)) as con:
        registered = "select customer_id from intermediate.int_customer_registrations"
        merged_away, survivor, late = (
            row[0]
            for row in con.sql(
                "select customer_id from intermediate.int_customer_purchase_days "
                f"where customer_id in ({registered}) and purchase_number = 2 "
                "order by customer_id limit 3"
            ).fetchall()
        )
        con.execute(
            "update marts.fct_orders set customer_id = $survivor, refreshed_at = now() "
            "where customer_id = $merged_away",
            {"survivor": survivor, "merged_away": merged_away},
        )
        con.execute(
            "update marts.fct_order_lines set customer_id = $survivor, refreshed_at = now() "
            "where customer_id = $merged_away",
            {"survivor": survivor, "merged_away": merged_away},
        )
        late_order = con.execute(
            "select order_id from marts.fct_orders where customer_id = $late and is_purchase "
            "order by order_id limit 1",
            {"late": late},
        ).fetchone()[0]
        con.execute(
            "insert into marts.fct_orders select * replace ("
            "order_id || '-late' as order_id, date '2026-06-09' as order_date, "
            "timestamp '2026-06-09 12:00' as ordered_at, now() as refreshed_at) "
            "from marts.fct_orders where order_id = $order",
            {"order": late_order},
        )
        con.execute(
            "insert into marts.fct_order_lines select * replace ("
            "order_line_id || '-late' as order_line_id, order_id || '-late' as order_id, "
            "date '2026-06-09' as order_date, timestamp '2026-06-09 12:00' as ordered_at, "
            "now() as refreshed_at) from marts.fct_order_lines where order_id = $order",
            {"order": late_order},
        )
    full = _copy(warehouse, tmp_path / "full")

    _dbt(warehouse, tmp_path / "target", dt.date(2026, 6, 30), select=LIFECYCLE)
    _dbt(full, tmp_path / "target", dt.date(2026, 6, 30), "--full-refresh", select=LIFECYCLE)

    assert _purchase_days(warehouse) == _purchase_days(full)
    assert _history(warehouse) == _history(full)
    assert _preferences(warehouse) == _preferences(full)
    rewritten, customers = _rewritten_customers(warehouse)
    assert rewritten == 2  # the survivor and the late buyer
    assert _recomputed_preferences(warehouse)[0] == 2
    assert customers > 500
    history = {row[0]: row for row in _history(warehouse)}
    assert history[merged_away][2] == "prospect"


def test_changed_lifecycle_settings_rewrite_everyone(nightly, tmp_path) -> None:
    warehouse = _copy(nightly["incremental"], tmp_path / "incremental")
    full = _copy(warehouse, tmp_path / "full")
    settings = {"lifecycle_dormant_after_days": 120, "lifecycle_new_customer_days": 14}

    _dbt(warehouse, tmp_path / "target", dt.date(2026, 6, 30), select=LIFECYCLE, dbt_vars=settings)
    _dbt(
        full,
        tmp_path / "target",
        dt.date(2026, 6, 30),
        "--full-refresh",
        select=LIFECYCLE,
        dbt_vars=settings,
    )

    assert _history(warehouse) == _history(full)
    assert _history(warehouse) != _history(nightly["full"])
    assert _preferences(warehouse) == _preferences(full)
    rewritten, customers = _rewritten_customers(warehouse)
    assert rewritten == customers


def test_an_as_of_date_moved_back_equals_a_full_refresh(nightly, tmp_path) -> None:
    # A replay of an earlier day: purchases and lines after it leave the tables.
    warehouse = _copy(nightly["incremental"], tmp_path / "incremental")
    full = _copy(warehouse, tmp_path / "full")

    _dbt(warehouse, tmp_path / "target", dt.date(2026, 6, 12), select=LIFECYCLE)
    _dbt(full, tmp_path / "target", dt.date(2026, 6, 12), "--full-refresh", select=LIFECYCLE)

    assert _purchase_days(warehouse) == _purchase_days(full)
    assert _history(warehouse) == _history(full)
    assert _preferences(warehouse) == _preferences(full)
    rewritten, customers = _rewritten_customers(warehouse)
    assert 0 < rewritten < customers
    recomputed, buyers = _recomputed_preferences(warehouse)
    assert 0 < recomputed < buyers


def test_a_repriced_catalogue_recomputes_every_buyers_price_band(nightly, tmp_path) -> None:
    # Price bands are lines within each category's prices: one product repriced moves them
    # for every buyer of the category, so the run recomputes everyone.
    warehouse = _copy(nightly["incremental"], tmp_path / "incremental")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update raw.products set price = price * 40 where sku = "
            "(select sku from raw.products where price > 0 order by sku limit 1)"
        )
    full = _copy(warehouse, tmp_path / "full")

    _dbt(warehouse, tmp_path / "target", dt.date(2026, 6, 30), select=LIFECYCLE)
    _dbt(full, tmp_path / "target", dt.date(2026, 6, 30), "--full-refresh", select=LIFECYCLE)

    assert _preferences(warehouse) == _preferences(full)
    recomputed, buyers = _recomputed_preferences(warehouse)
    assert recomputed == buyers

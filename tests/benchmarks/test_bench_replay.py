"""The orchestration-overhead replay runs dbt's statements on a copy of the warehouse taken before
the dbt steps, so incremental models redo the work dbt did; it copies in what a Python step wrote
between the dbt steps and reports whether it ended where dbt ended.

Real DuckDB files and a dbt debug log in dbt's JSON format, replayed by the benchmark's own
stage function."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.benchmarks._load import load_benchmark

SPLINK = "intermediate.identity_probabilistic_links"
OBSERVATIONS = "intermediate.int_identity_observations"

# An incremental model as dbt runs it: rewrite the rows of landings newer than its watermark,
# stamped with the run's time; the second step reads what Splink wrote between the dbt steps.
STATEMENTS = [
    ("model.p.int_identity_observations", "begin"),
    (
        "model.p.int_identity_observations",
        f"""insert into {OBSERVATIONS}
        select l.record_id, timestamp '2026-11-23 02:00:00' as refreshed_at
        from raw.landings as l
        where l.loaded_at > (select max(refreshed_at) from {OBSERVATIONS})""",
    ),
    ("model.p.int_identity_observations", "commit"),
    (
        "model.p.int_identity_components",
        f"create or replace table intermediate.int_identity_components as "
        f"select count(*) as links from {SPLINK}",
    ),
]


def _dbt_log(target: Path) -> None:
    target.mkdir(parents=True)
    with (target / "dbt.log").open("w") as log:
        for node, sql in STATEMENTS:
            log.write(
                json.dumps(
                    {
                        "info": {"name": "SQLQuery", "thread": "T1"},
                        "data": {"sql": sql, "conn_name": node},
                    }
                )
                + "\n"
            )
            log.write(
                json.dumps(
                    {"info": {"name": "SQLQueryStatus", "thread": "T1"}, "data": {"elapsed": 0.5}}
                )
                + "\n"
            )


def _warehouse(path: Path, *, after_nightly: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw; create schema intermediate")
        con.execute(
            "create table raw.landings as select * from (values (1, timestamp '2026-11-21 00:00:00'), "
            "(2, timestamp '2026-11-22 23:00:00')) as t(record_id, loaded_at)"
        )
        rows = "(1, timestamp '2026-11-22 02:00:00')"
        if after_nightly:
            rows += ", (2, timestamp '2026-11-23 02:00:00')"
            con.execute(f"create table {SPLINK} as select * from range(3) as t(pair)")
        con.execute(
            f"create table {OBSERVATIONS} as select * from (values {rows}) as t(record_id, refreshed_at)"
        )


def _paths(root: Path) -> tuple[Path, Path]:
    """The replay's copy and the live warehouse (the copy keeps the file name: DuckDB names the
    catalog after it)."""
    return root / "replay" / "warehouse.duckdb", root / "warehouse.duckdb"


def _replay(root: Path, compared: list[str]) -> dict:
    """The benchmark's replay stage over the statements of STATEMENTS, as the bench calls it."""
    target = root / "dbt_target" / "nightly"
    _dbt_log(target)
    copy, live = _paths(root)
    return load_benchmark("bench_pipeline").stage_direct_sql(
        {
            "targets": [str(target)],
            "warehouse": str(copy),
            "live_warehouse": str(live),
            "copy_tables": [SPLINK],
            "compare_tables": compared,
            "profile_top": 0,
            "profile_dir": str(root / "profile"),
        }
    )


def test_replay_on_the_copy_redoes_the_nightly_work_and_ends_where_dbt_ended(
    tmp_path: Path,
) -> None:
    # The copy as the nightly's dbt steps found it: the new landing not yet consumed, no Splink
    # table yet. The live warehouse as they left it (Splink wrote 3 links between them).
    copy, live = _paths(tmp_path)
    _warehouse(copy, after_nightly=False)
    _warehouse(live, after_nightly=True)
    with duckdb.connect(str(live)) as con:
        con.execute(
            "create table intermediate.int_identity_components as select 3::bigint as links"
        )

    details = _replay(tmp_path, [OBSERVATIONS, "intermediate.int_identity_components"])

    # BEGIN/COMMIT are not replayed; the insert and the components statement are.
    assert details["statements"] == 2
    assert details["rows_rewritten_by_replay"] == {OBSERVATIONS: 1}
    assert details["replayed_tables_equal_dbt"] == {
        OBSERVATIONS: True,
        "intermediate.int_identity_components": True,
    }


def test_a_replay_that_ends_elsewhere_says_so(tmp_path: Path) -> None:
    copy, live = _paths(tmp_path)
    # Replayed on the warehouse the nightly left behind (the old method), the incremental
    # statement finds nothing new: it rewrites no rows, and here dbt had rewritten one more.
    _warehouse(copy, after_nightly=True)
    _warehouse(live, after_nightly=True)
    with duckdb.connect(str(live)) as con:
        con.execute(f"insert into {OBSERVATIONS} values (3, timestamp '2026-11-23 02:00:00')")

    details = _replay(tmp_path, [OBSERVATIONS])

    assert details["rows_rewritten_by_replay"] == {OBSERVATIONS: 0}
    assert details["replayed_tables_equal_dbt"] == {OBSERVATIONS: False}
    assert "NOT as dbt did" in load_benchmark("bench_pipeline")._replay_equality(
        details["replayed_tables_equal_dbt"], details["rows_rewritten_by_replay"]
    )

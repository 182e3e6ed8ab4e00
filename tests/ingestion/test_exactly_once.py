"""Exactly-once partition replacement, duplicate-file skipping, failure atomicity, line numbers."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from orchestration.ingestion.loader import load_partitions

SOURCE = "online_orders"
DAY = dt.date(2026, 1, 2)
OTHER_DAY = dt.date(2026, 1, 3)
HEADER = "order_id,ordered_at,order_total,account_id"
TS = "2026-01-02T10:00:00Z"


def _write(landing: Path, name: str, lines: list[str], day: dt.date = DAY) -> Path:
    path = landing / SOURCE / day.isoformat() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _rows(con, day: dt.date = DAY) -> list[tuple]:
    return con.execute(
        f"select order_id, order_total, _source_file, _run_id from raw.{SOURCE} "
        "where _partition_date = ? order by order_id",
        [day],
    ).fetchall()


def _quarantine(con, day: dt.date = DAY) -> list[tuple]:
    return con.execute(
        "select regexp_extract(source_file, '[^/]+$'), line_number, reason, run_id from quarantine.rejected_rows "
        "where partition_date = ? order by source_file, line_number",
        [day],
    ).fetchall()


def _ledger(con, day: dt.date = DAY) -> list[tuple]:
    return con.execute(
        "select file_path, file_sha256, run_id from raw._loaded_files where partition_date = ? order by file_path",
        [day],
    ).fetchall()


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield connection
    connection.close()


@pytest.fixture
def landing(tmp_path) -> Path:
    return tmp_path / "landing"


def test_reloading_same_date_is_a_noop(con, landing):
    _write(landing, "a.csv", [f"o1,{TS},1,acc", f"o2,{TS},x,acc"])
    [first] = load_partitions(con, landing, SOURCE, [DAY], run_id="run1")
    assert (first.status, first.rows_loaded, first.rows_quarantined) == ("loaded", 1, 1)
    before = (_rows(con), _quarantine(con), _ledger(con))

    [again] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    assert again.status == "unchanged"
    assert (again.rows_loaded, again.rows_quarantined, again.files_loaded) == (0, 0, 0)
    assert (
        _rows(con),
        _quarantine(con),
        _ledger(con),
    ) == before  # still run1's rows, nothing added


def test_modified_file_replaces_the_partition(con, landing):
    path = _write(landing, "a.csv", [f"o1,{TS},1,acc", f"o2,{TS},x,acc"])
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")
    path.write_text(
        "\n".join([HEADER, f"o1,{TS},10,acc", f"o2,{TS},20,acc", f"o3,{TS},30,acc", "o4,bad,1,acc"])
        + "\n"
    )

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 3, 1)
    path_key = f"{SOURCE}/{DAY.isoformat()}/a.csv"
    assert [(r[0], int(r[1]), r[3]) for r in _rows(con)] == [
        ("o1", 10, "run2"),
        ("o2", 20, "run2"),
        ("o3", 30, "run2"),
    ]
    # the old quarantined row (o2's 'x') is gone; only the new file's bad row remains
    assert _quarantine(con) == [("a.csv", 5, "invalid_timestamp:ordered_at", "run2")]
    assert [(p, r) for p, _, r in _ledger(con)] == [(path_key, "run2")]


def test_modifying_one_of_two_files_reloads_both_once(con, landing):
    _write(landing, "a.csv", [f"o1,{TS},1,acc"])
    b = _write(landing, "b.csv", [f"o2,{TS},2,acc"])
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")
    b.write_text("\n".join([HEADER, f"o2,{TS},22,acc", f"o3,{TS},3,acc"]) + "\n")

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    # a.csv's hash is deleted and re-inserted in the ledger inside one transaction
    assert (result.status, result.files_loaded, result.rows_loaded) == ("loaded", 2, 3)
    assert [(r[0], int(r[1])) for r in _rows(con)] == [("o1", 1), ("o2", 22), ("o3", 3)]
    assert len(_ledger(con)) == 2


def test_same_content_under_another_name_same_date_is_skipped(con, landing):
    a = _write(landing, "a.csv", [f"o1,{TS},1,acc", f"o2,{TS},2,acc"])
    shutil.copy(a, a.with_name("a_resent.csv"))

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    assert result.status == "loaded"
    assert result.files_skipped_duplicate == [f"{SOURCE}/{DAY.isoformat()}/a_resent.csv"]
    assert (result.files_loaded, result.rows_loaded, result.rows_quarantined) == (1, 2, 0)
    assert [r[0] for r in _rows(con)] == ["o1", "o2"]
    assert _quarantine(con) == []  # the copy is not loaded, so no duplicate_key rows either
    assert [p for p, _, _ in _ledger(con)] == [f"{SOURCE}/{DAY.isoformat()}/a.csv"]


def test_same_content_in_another_dates_folder_is_skipped(con, landing):
    a = _write(landing, "a.csv", [f"o1,{TS},1,acc", f"o2,{TS},2,acc"])
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")
    copy = landing / SOURCE / OTHER_DAY.isoformat() / "export.csv"
    copy.parent.mkdir(parents=True)
    shutil.copy(a, copy)

    [result] = load_partitions(con, landing, SOURCE, [OTHER_DAY], run_id="run2")

    assert result.status != "failed"
    assert result.files_skipped_duplicate == [f"{SOURCE}/{OTHER_DAY.isoformat()}/export.csv"]
    assert (result.files_loaded, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    assert _rows(con, OTHER_DAY) == []
    assert con.execute(f"select count(*) from raw.{SOURCE}").fetchone()[0] == 2
    assert _ledger(con, OTHER_DAY) == []


def test_same_content_in_two_dates_loaded_in_one_call_loads_once(con, landing):
    a = _write(landing, "a.csv", [f"o1,{TS},1,acc"])
    (landing / SOURCE / OTHER_DAY.isoformat()).mkdir(parents=True)
    shutil.copy(a, landing / SOURCE / OTHER_DAY.isoformat() / "a.csv")

    first, second = load_partitions(con, landing, SOURCE, [DAY, OTHER_DAY], run_id="run1")

    assert (first.rows_loaded, first.files_skipped_duplicate) == (1, [])
    assert (second.rows_loaded, second.files_skipped_duplicate) == (
        0,
        [f"{SOURCE}/{OTHER_DAY.isoformat()}/a.csv"],
    )
    assert con.execute(f"select count(*) from raw.{SOURCE}").fetchone()[0] == 1


def test_rerun_with_a_skipped_copy_loads_nothing_twice(con, landing):
    a = _write(landing, "a.csv", [f"o1,{TS},1,acc"])
    shutil.copy(a, a.with_name("b.csv"))
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    [again] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    assert again.rows_loaded == 1 or again.status == "unchanged"
    assert [r[0] for r in _rows(con)] == ["o1"]
    assert _quarantine(con) == []


def test_rerun_with_a_skipped_copy_is_unchanged(con, landing):
    a = _write(landing, "a.csv", [f"o1,{TS},1,acc"])
    shutil.copy(a, a.with_name("b.csv"))
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    [again] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    assert again.status == "unchanged"


def test_good_and_unreadable_file_on_first_load_loads_nothing(con, landing):
    _write(landing, "a.csv", [f"o1,{TS},1,acc"])
    broken = landing / SOURCE / DAY.isoformat() / "b.csv.gz"
    broken.write_bytes(gzip.compress(b"order_id,ordered_at,order_total,account_id\n" * 500)[:40])

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    assert result.status == "failed"
    assert str(broken) in result.error and "gzip" in result.error
    assert (_rows(con), _quarantine(con), _ledger(con)) == ([], [], [])


def test_unreadable_file_added_later_leaves_previous_state(con, landing):
    _write(landing, "a.csv", [f"o1,{TS},1,acc", f"o2,{TS},x,acc"])
    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")
    before = (_rows(con), _quarantine(con), _ledger(con))
    broken = landing / SOURCE / DAY.isoformat() / "b.csv"
    broken.write_text("ordered_at,order_total\n2026-01-02,1\n")

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run2")

    assert result.status == "failed"
    assert str(broken) in result.error and "missing required column(s) order_id" in result.error
    assert (_rows(con), _quarantine(con), _ledger(con)) == before
    assert [r[3] for r in _rows(con)] == ["run1"]

    broken.unlink()
    [after_fix] = load_partitions(con, landing, SOURCE, [DAY], run_id="run3")
    assert after_fix.status == "unchanged"


def test_failed_partition_does_not_stop_other_dates(con, landing):
    bad = _write(landing, "a.csv", [], day=DAY)
    bad.write_bytes(b"")
    _write(landing, "a.csv", [f"o1,{TS},1,acc"], day=OTHER_DAY)

    failed, loaded = load_partitions(con, landing, SOURCE, [DAY, OTHER_DAY], run_id="run1")

    assert (failed.status, loaded.status, loaded.rows_loaded) == ("failed", "loaded", 1)


def test_csv_line_numbers_point_to_physical_lines_after_malformed_rows(con, landing):
    _write(
        landing,
        "a.csv",
        [
            f"o1,{TS},1,acc",  # line 2: loaded
            f"o2,{TS},1,acc,extra",  # line 3: too many columns
            f"o3,{TS},nope,acc",  # line 4: invalid number
            f"o4,{TS},1",  # line 5: missing columns
            f"o5,{TS},1,acc",  # line 6: loaded
            f"o6,{TS},1,",  # line 7: missing identifier
            f'o7,{TS},1,"multi\nline"',  # lines 8-9: loaded (quoted newline)
        ],
    )

    load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    assert [(line, reason) for _, line, reason, _ in _quarantine(con)] == [
        (3, "malformed_row:too_many_columns"),
        (4, "invalid_number:order_total"),
        (5, "malformed_row:missing_columns"),
        (7, "missing_identifier"),
    ]
    assert con.execute(
        f"select order_id, _line_number from raw.{SOURCE} order by _record_number"
    ).fetchall() == [("o1", 2), ("o5", 6), ("o7", 8)]


def test_jsonl_line_numbers_point_to_physical_lines(con, landing):
    path = landing / SOURCE / DAY.isoformat() / "a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"order_id": "o1", "ordered_at": "2026-01-02", "order_total": "1", "account_id": "a"}\n'  # 1
        "\n"  # 2 (blank, ignored)
        "{broken\n"  # 3
        '{"order_id": "o2", "ordered_at": "2026-01-02", "order_total": "x", "account_id": "a"}\n'  # 4
        '["o3"]\n'  # 5
        '{"order_id": "o4", "ordered_at": "2026-01-02", "order_total": "4", "account_id": "a"}\n'  # 6
    )

    [result] = load_partitions(con, landing, SOURCE, [DAY], run_id="run1")

    assert (result.rows_loaded, result.rows_quarantined) == (2, 3)
    assert [(line, reason) for _, line, reason, _ in _quarantine(con)] == [
        (3, "malformed_row:not_a_json_object"),
        (4, "invalid_number:order_total"),
        (5, "malformed_row:not_a_json_object"),
    ]
    assert con.execute(
        f"select order_id, _line_number from raw.{SOURCE} order by _record_number"
    ).fetchall() == [("o1", 1), ("o4", 6)]

"""Every case of the broken/edge-case corpus gives exactly its expected outcome."""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from orchestration.ingestion.loader import load_partitions

from .corpus import CASE_IDS, CASES, Case, build_corpus


def _partition_counts(con: duckdb.DuckDBPyConnection, case: Case) -> tuple[int, int, int]:
    raw = con.execute(
        f"select count(*) from raw.{case.source} where _partition_date = ?", [case.partition_date]
    ).fetchone()[0]
    quarantined = con.execute(
        "select count(*) from quarantine.rejected_rows where source = ? and partition_date = ?",
        [case.source, case.partition_date],
    ).fetchone()[0]
    ledger = con.execute(
        "select count(*) from raw._loaded_files where source = ? and partition_date = ?",
        [case.source, case.partition_date],
    ).fetchone()[0]
    return raw, quarantined, ledger


def _assert_outcome(con: duckdb.DuckDBPyConnection, case: Case, result, landing) -> None:
    assert result.status == case.status, result.error
    if case.status == "failed":
        failing = landing / case.source / case.partition_date.isoformat() / case.failing_file
        assert str(failing) in result.error
        for fragment in case.error_contains:
            assert fragment.lower() in result.error.lower(), result.error
        assert (result.rows_loaded, result.rows_quarantined) == (0, 0)
        assert _partition_counts(con, case) == (0, 0, 0)
        return
    assert result.error is None
    assert result.rows_loaded == case.rows_loaded
    assert result.rows_quarantined == case.rows_quarantined
    assert result.quarantine_reasons == Counter(case.reasons)
    raw, quarantined, ledger = _partition_counts(con, case)
    assert (raw, quarantined, ledger) == (case.rows_loaded, case.rows_quarantined, len(case.files))
    if case.data_records is not None:
        # nothing silently dropped: every data line/record is either in raw or in quarantine
        assert raw + quarantined == case.data_records
    for check in case.extra_checks:
        check(con, case.partition_date)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_corpus_case(tmp_path, case: Case) -> None:
    landing = tmp_path / "landing"
    build_corpus(landing, [case.id])
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    [result] = load_partitions(con, landing, case.source, [case.partition_date], run_id="corpus")
    _assert_outcome(con, case, result, landing)


def test_whole_corpus_in_one_run_keeps_cases_isolated(tmp_path) -> None:
    """All partitions in one call: a failing partition changes nothing of the others."""
    landing = tmp_path / "landing"
    build_corpus(landing)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    by_source: dict[str, list[Case]] = {}
    for case in CASES:
        by_source.setdefault(case.source, []).append(case)
    for source, cases in by_source.items():
        results = load_partitions(
            con, landing, source, [c.partition_date for c in cases], run_id="all"
        )
        assert [r.partition_date for r in results] == [c.partition_date for c in cases]
        for case, result in zip(cases, results, strict=True):
            _assert_outcome(con, case, result, landing)

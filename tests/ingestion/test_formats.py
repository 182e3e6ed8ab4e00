"""Format variants exporters really produce."""

from __future__ import annotations

import datetime as dt

import duckdb

from orchestration.ingestion.loader import load_partitions
from tests.conftest import write


def test_jsonl_with_windows_line_endings_loads(tmp_path) -> None:
    landing = tmp_path / "landing"
    write(
        landing / "web_events/2026-03-01/events.jsonl",
        '{"event_id": "e1", "occurred_at": "2026-03-01T10:00:00Z", "event_type": "page_view"}\r\n'
        '{"event_id": "e2", "occurred_at": "2026-03-01T11:00:00Z", "event_type": "cart_add"}\r\n',
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    [result] = load_partitions(con, landing, "web_events", [dt.date(2026, 3, 1)])
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 2, 0)
    assert con.execute("select event_id, event_type from raw.web_events order by 1").fetchall() == [
        ("e1", "page_view"),
        ("e2", "cart_add"),
    ]

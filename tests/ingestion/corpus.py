"""A corpus of broken and edge-case landing files, built by code, each with its expected outcome.

Every case gets its own date partition (so the whole corpus can be loaded in one call
and the cases cannot see each other) and names the exact counts the loader must report.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

FIRST_DATE = dt.date(2026, 1, 1)
TS = "2026-01-02T10:00:00Z"
ORDERS_HEADER = "order_id,ordered_at,order_total,account_id,email,phone"
TEN_MB = 10 * 1024 * 1024

Check = Callable[[duckdb.DuckDBPyConnection, dt.date], None]


@dataclass
class Case:
    id: str
    source: str
    # file name -> bytes, or a callable writing the file (for parquet)
    files: dict[str, bytes | Callable[[Path], None]]
    status: str
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # failed cases: the file the error must name and substrings of the problem (case-insensitive)
    failing_file: str | None = None
    error_contains: tuple[str, ...] = ()
    # data lines/records in the files: loaded + quarantined must account for every one
    data_records: int | None = None
    extra_checks: tuple[Check, ...] = ()
    partition_date: dt.date = FIRST_DATE

    def write(self, landing_dir: Path) -> list[Path]:
        folder = landing_dir / self.source / self.partition_date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, content in self.files.items():
            path = folder / name
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
            paths.append(path)
        return paths


def _csv(*lines: str, header: str = ORDERS_HEADER, encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode(encoding)


def _order(
    order_id: str,
    total: str = "1",
    account: str = "acc",
    email: str = "",
    phone: str = "",
    ts: str = TS,
) -> str:
    return ",".join([order_id, ts, total, account, email, phone])


def _raw_rows(
    con: duckdb.DuckDBPyConnection, source: str, day: dt.date, columns: str
) -> list[tuple]:
    return con.execute(
        f"select {columns} from raw.{source} where _partition_date = ? order by _source_file, _record_number",
        [day],
    ).fetchall()


def _quarantine(con: duckdb.DuckDBPyConnection, day: dt.date) -> list[tuple]:
    return con.execute(
        "select regexp_extract(source_file, '[^/]+$'), line_number, reason from quarantine.rejected_rows "
        "where partition_date = ? order by source_file, line_number",
        [day],
    ).fetchall()


def _column_type(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    row = con.execute(
        "select data_type from duckdb_columns() where schema_name = 'raw' and table_name = ? and column_name = ?",
        [table, column],
    ).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- per-case checks


def _bom_header_is_order_id(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id") == [("o1",), ("o2",)]
    assert _column_type(con, "online_orders", "xorder_id") is None  # BOM did not make a new column


def _extra_columns_kept_as_varchar(con, day):
    assert _column_type(con, "online_orders", "loyalty_tier") == "VARCHAR"
    assert _column_type(con, "online_orders", "gift_note") == "VARCHAR"
    assert _raw_rows(con, "online_orders", day, "order_id, loyalty_tier, gift_note") == [
        ("o1", "gold", "not-a-number"),
        ("o2", None, "12.5"),
    ]


def _missing_optionals_are_null(con, day):
    assert _raw_rows(
        con, "online_orders", day, "order_id, account_id, email, phone, status, channel"
    ) == [
        ("o1", "acc1", None, None, None, None),
        ("o2", "acc2", None, None, None, None),
    ]


def _first_occurrence_kept_in_file(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id, order_total, _line_number") == [
        ("o1", Decimal("1"), 2),
        ("o2", Decimal("4"), 5),
    ]
    assert _quarantine(con, day) == [
        ("a.csv", 3, "duplicate_key"),
        ("a.csv", 4, "duplicate_key"),
    ]


def _first_file_wins(con, day):
    assert _raw_rows(
        con, "online_orders", day, "order_id, order_total, regexp_extract(_source_file, '[^/]+$')"
    ) == [
        ("o1", Decimal("1"), "a.csv"),
        ("o2", Decimal("2"), "a.csv"),
        ("o3", Decimal("30"), "b.csv"),
    ]
    assert _quarantine(con, day) == [("b.csv", 2, "duplicate_key")]


def _email_phone_reasons(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id, email, phone") == [
        ("o1", " A@B.com ", "+86 138 0013 8000"),
    ]
    assert [r[1:] for r in _quarantine(con, day)] == [
        (3, "invalid_email:email"),
        (4, "invalid_phone:phone"),
        (5, "invalid_phone:phone"),
        (6, "invalid_email:email; invalid_phone:phone"),
    ]


def _long_value_row_quarantined_truncated(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id") == [("o1",), ("o3",)]
    line, reason, record = con.execute(
        "select line_number, reason, record from quarantine.rejected_rows where partition_date = ?",
        [day],
    ).fetchone()
    assert (line, reason) == (3, "value_too_long:status")
    assert len(record) < 10_000  # the quarantined record is capped, not 10 MB


def _malformed_lines_at_their_lines(con, day):
    assert [r[1:] for r in _quarantine(con, day)] == [
        (3, "malformed_row:too_many_columns"),
        (4, "malformed_row:too_many_columns"),
        (6, "malformed_row:missing_columns"),
    ]
    assert _raw_rows(con, "online_orders", day, "order_id, _line_number") == [
        ("o1", 2),
        ("o4", 5),
        ("o6", 7),
    ]


def _jsonl_lines(con, day):
    assert [r[1:] for r in _quarantine(con, day)] == [
        (2, "malformed_row:not_a_json_object"),
        (3, "malformed_row:not_a_json_object"),
        (5, "malformed_row:not_a_json_object"),
    ]
    assert _raw_rows(con, "online_orders", day, "order_id, order_total, _line_number") == [
        ("o1", Decimal("1"), 1),
        ("o2", Decimal("2.5"), 7),
    ]


def _parquet_strings(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id, ordered_at, order_total, extra") == [
        ("o1", dt.datetime(2026, 1, 2, 2, 0), Decimal("1.5"), "x"),
    ]
    reasons = con.execute(
        "select line_number, reason from quarantine.rejected_rows where partition_date = ? order by 1",
        [day],
    ).fetchall()
    assert reasons == [
        (2, "invalid_timestamp:ordered_at; invalid_number:order_total; invalid_email:email"),
        (3, "missing_identifier"),
        (
            4,
            "missing_required_value:ordered_at; missing_required_value:order_total; missing_identifier",
        ),
    ]


def _parquet_native_types(con, day):
    assert _raw_rows(con, "online_orders", day, "order_id, ordered_at, order_total") == [
        ("1", dt.datetime(2026, 1, 2, 2, 0), Decimal("1.5")),
        ("2", dt.datetime(2026, 1, 2, 11, 0), Decimal("2.25")),
    ]


def _order_lines_reasons(con, day):
    assert _raw_rows(con, "online_order_lines", day, "order_id, quantity, unit_price, line_no") == [
        ("o1", 2, Decimal("9.99"), 1),
    ]
    assert [r[1:] for r in _quarantine(con, day)] == [
        (3, "invalid_integer:quantity"),
        (4, "invalid_number:unit_price"),
        (5, "invalid_integer:line_no"),
        (6, "invalid_integer:quantity; invalid_number:unit_price"),
        (7, "missing_required_value:sku"),
    ]


def _products_reasons(con, day):
    assert _raw_rows(con, "products", day, "sku, is_active, updated_at, margin_rate") == [
        ("s1", True, dt.datetime(2026, 1, 2, 2, 0), Decimal("0.25")),
        ("s5", False, None, None),
    ]


def _latin1_nothing_dropped(con, day):
    assert [r[1:] for r in _quarantine(con, day)] == [(2, "malformed_row:invalid_encoding")]
    assert _raw_rows(con, "online_orders", day, "order_id, _line_number") == [("o2", 3)]


# ---------------------------------------------------------------- the corpus


def _truncated_gzip() -> bytes:
    body = _csv(*(_order(f"o{i}") for i in range(2000)))
    compressed = gzip.compress(body)
    return compressed[: len(compressed) // 2]


def _parquet_with_bad_strings(path: Path) -> None:
    table = pa.table(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "ordered_at": ["2026-01-02T10:00:00+08:00", "yesterday", "2026-01-02", None],
            "order_total": ["1.5", "ten", "2", ""],
            "email": ["a@b.com", "nope", None, None],
            "account_id": pa.array([None, None, None, None], pa.string()),
            "extra": ["x", None, "y", "z"],
        }
    )
    pq.write_table(table, path)


def _parquet_native(path: Path) -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    table = pa.table(
        {
            "order_id": pa.array([1, 2], pa.int64()),
            "ordered_at": pa.array(
                [
                    dt.datetime(2026, 1, 2, 10, tzinfo=shanghai),
                    dt.datetime(2026, 1, 2, 11, tzinfo=dt.UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "order_total": pa.array([Decimal("1.50"), Decimal("2.25")], pa.decimal128(10, 2)),
            "account_id": ["a", "b"],
        }
    )
    pq.write_table(table, path)


def _cases() -> list[Case]:
    big = "x" * TEN_MB
    lines_header = "order_id,sku,quantity,unit_price,line_no"
    products_header = "sku,name,category,price,is_active,updated_at,margin_rate"
    return [
        Case(
            "utf8_bom_header",
            "online_orders",
            {"a.csv": b"\xef\xbb\xbf" + _csv(_order("o1"), _order("o2"))},
            "loaded",
            rows_loaded=2,
            data_records=2,
            extra_checks=(_bom_header_is_order_id,),
        ),
        Case(
            "semicolon_delimiter",
            "online_orders",
            {"a.csv": _csv("o1;2026-01-02;1;acc;;", header=ORDERS_HEADER.replace(",", ";"))},
            "failed",
            failing_file="a.csv",
            error_contains=("delimit",),
        ),
        Case(
            "truncated_gzip",
            "online_orders",
            {"a.csv.gz": _truncated_gzip()},
            "failed",
            failing_file="a.csv.gz",
            error_contains=("gzip", "truncated"),
        ),
        Case(
            "binary_junk",
            "online_orders",
            {"a.csv": random.Random(20260102).randbytes(8192)},
            "failed",
            failing_file="a.csv",
            error_contains=("error",),
        ),
        Case(
            "nul_bytes",
            "online_orders",
            {"a.csv": b"\x00" * 1000},
            "failed",
            failing_file="a.csv",
            error_contains=("error",),
        ),
        Case(
            "empty_file",
            "online_orders",
            {"a.csv": b""},
            "failed",
            failing_file="a.csv",
            error_contains=("empty",),
        ),
        Case("header_only", "online_orders", {"a.csv": _csv()}, "loaded", data_records=0),
        Case(
            "missing_required_column",
            "online_orders",
            {"a.csv": _csv("2026-01-02,1,acc", header="ordered_at,order_total,account_id")},
            "failed",
            failing_file="a.csv",
            error_contains=("missing required column(s) order_id",),
        ),
        Case(
            "extra_unknown_columns",
            "online_orders",
            {
                "a.csv": _csv(
                    _order("o1") + ",gold,not-a-number",
                    _order("o2") + ",,12.5",
                    header=ORDERS_HEADER + ",Loyalty Tier,gift_note",
                )
            },
            "loaded",
            rows_loaded=2,
            data_records=2,
            extra_checks=(_extra_columns_kept_as_varchar,),
        ),
        Case(
            "missing_optional_columns",
            "online_orders",
            {
                "a.csv": _csv(
                    f"o1,{TS},1,acc1",
                    f"o2,{TS},2,acc2",
                    header="order_id,ordered_at,order_total,account_id",
                )
            },
            "loaded",
            rows_loaded=2,
            data_records=2,
            extra_checks=(_missing_optionals_are_null,),
        ),
        Case(
            "duplicate_keys_within_file",
            "online_orders",
            {
                "a.csv": _csv(
                    _order("o1", "1"), _order("o1", "2"), _order("o1", "3"), _order("o2", "4")
                )
            },
            "loaded",
            rows_loaded=2,
            rows_quarantined=2,
            reasons={"duplicate_key": 2},
            data_records=4,
            extra_checks=(_first_occurrence_kept_in_file,),
        ),
        Case(
            "duplicate_keys_across_files",
            "online_orders",
            {
                "a.csv": _csv(_order("o1", "1"), _order("o2", "2")),
                "b.csv": _csv(_order("o2", "20"), _order("o3", "30")),
            },
            "loaded",
            rows_loaded=3,
            rows_quarantined=1,
            reasons={"duplicate_key": 1},
            data_records=4,
            extra_checks=(_first_file_wins,),
        ),
        Case(
            "invalid_emails_and_phones",
            "online_orders",
            {
                "a.csv": _csv(
                    _order("o1", email=" A@B.com ", phone="+86 138 0013 8000"),
                    _order("o2", email="a@b"),
                    _order("o3", phone="12-34"),
                    _order("o4", phone="call me"),
                    _order("o5", email="a b@c.com", phone="123"),
                )
            },
            "loaded",
            rows_loaded=1,
            rows_quarantined=4,
            reasons={"invalid_email:email": 2, "invalid_phone:phone": 3},
            data_records=5,
            extra_checks=(_email_phone_reasons,),
        ),
        Case(
            "ten_mb_field",
            "online_orders",
            {
                "a.csv": _csv(
                    _order("o1") + ",paid",
                    _order("o2") + f",{big}",
                    _order("o3") + ",paid",
                    header=ORDERS_HEADER + ",status",
                )
            },
            "loaded",
            rows_loaded=2,
            rows_quarantined=1,
            reasons={"value_too_long:status": 1},
            data_records=3,
            extra_checks=(_long_value_row_quarantined_truncated,),
        ),
        Case(
            "wrong_column_counts",
            "online_orders",
            {
                "a.csv": _csv(
                    _order("o1"),
                    _order("o2") + ",x",
                    _order("o3") + ",x,y",
                    _order("o4"),
                    f"o5,{TS},1",
                    _order("o6"),
                )
            },
            "loaded",
            rows_loaded=3,
            rows_quarantined=3,
            reasons={"malformed_row:too_many_columns": 2, "malformed_row:missing_columns": 1},
            data_records=6,
            extra_checks=(_malformed_lines_at_their_lines,),
        ),
        Case(
            "jsonl_non_json_and_array_lines",
            "online_orders",
            {
                "a.jsonl": (
                    b'{"order_id": "o1", "ordered_at": "2026-01-02", "order_total": "1", "account_id": "a"}\n'
                    b"this is not json\n"
                    b"[1, 2, 3]\n"
                    b"\n"
                    b'{"order_id": "o9", "ordered_at": \n'
                    b"\n"
                    b'{"order_id": "o2", "ordered_at": "2026-01-02T10:00:00Z", "order_total": 2.5, "account_id": "a"}\n'
                )
            },
            "loaded",
            rows_loaded=2,
            rows_quarantined=3,
            reasons={"malformed_row:not_a_json_object": 3},
            data_records=5,
            extra_checks=(_jsonl_lines,),
        ),
        Case(
            "jsonl_without_objects",
            "online_orders",
            {"a.jsonl": b"[1]\nnope\n"},
            "failed",
            failing_file="a.jsonl",
            error_contains=("json object",),
        ),
        Case(
            "parquet_string_columns_with_bad_values",
            "online_orders",
            {"a.parquet": _parquet_with_bad_strings},
            "loaded",
            rows_loaded=1,
            rows_quarantined=3,
            reasons={
                "invalid_timestamp:ordered_at": 1,
                "invalid_number:order_total": 1,
                "invalid_email:email": 1,
                "missing_identifier": 2,
                "missing_required_value:ordered_at": 1,
                "missing_required_value:order_total": 1,
            },
            data_records=4,
            extra_checks=(_parquet_strings,),
        ),
        Case(
            "parquet_native_types",
            "online_orders",
            {"a.parquet": _parquet_native},
            "loaded",
            rows_loaded=2,
            data_records=2,
            extra_checks=(_parquet_native_types,),
        ),
        Case(
            "parquet_not_parquet",
            "online_orders",
            {"a.parquet": b"PAR1" + b"junk" * 100},
            "failed",
            failing_file="a.parquet",
            error_contains=("magic",),
        ),
        Case(
            "unparseable_order_line_values",
            "online_order_lines",
            {
                "a.csv": _csv(
                    "o1,sku1,2,9.99,1",
                    "o1,sku1,1.5,9.99,2",
                    "o1,sku1,1,abc,3",
                    "o1,sku1,1,9.99,x",
                    "o1,sku1,one,1;2,4",
                    "o1,,1,9.99,5",
                    header=lines_header,
                )
            },
            "loaded",
            rows_loaded=1,
            rows_quarantined=5,
            reasons={
                "invalid_integer:quantity": 2,
                "invalid_number:unit_price": 2,
                "invalid_integer:line_no": 1,
                "missing_required_value:sku": 1,
            },
            data_records=6,
            extra_checks=(_order_lines_reasons,),
        ),
        Case(
            "unparseable_product_values",
            "products",
            {
                "a.csv": _csv(
                    "s1,Tee,tops,10,Yes,2026-01-02T10:00:00+08:00,0.25",
                    "s2,Tee,tops,10,maybe,2026-01-02,0.1",
                    "s3,Tee,tops,10,1,not a time,0.1",
                    "s4,Tee,tops,ten,0,2026-01-02,25%",
                    "s5,Tee,tops,10,no,,",
                    header=products_header,
                )
            },
            "loaded",
            rows_loaded=2,
            rows_quarantined=3,
            reasons={
                "invalid_boolean:is_active": 1,
                "invalid_timestamp:updated_at": 1,
                "invalid_number:price": 1,
                "invalid_number:margin_rate": 1,
            },
            data_records=5,
            extra_checks=(_products_reasons,),
        ),
        Case(
            "unparseable_dates",
            "accounts",
            {
                "a.csv": _csv(
                    "a1,2026-01-02T10:00:00Z,1990-12-31",
                    "a2,2026-01-02T10:00:00Z,31/12/1990",
                    "a3,2026-01-02T10:00:00Z,1990-02-30",
                    "a4,garbage,",
                    header="account_id,updated_at,birth_date",
                )
            },
            "loaded",
            rows_loaded=1,
            rows_quarantined=3,
            reasons={"invalid_date:birth_date": 2, "invalid_timestamp:updated_at": 1},
            data_records=4,
        ),
        Case(
            "online_orders_without_identifier",
            "online_orders",
            {"a.csv": _csv(_order("o1", account=""), _order("o2", account=" "), _order("o3"))},
            "loaded",
            rows_loaded=1,
            rows_quarantined=2,
            reasons={"missing_identifier": 2},
            data_records=3,
        ),
        Case(
            "online_orders_without_identifier_columns",
            "online_orders",
            {"a.csv": _csv(f"o1,{TS},1", f"o2,{TS},2", header="order_id,ordered_at,order_total")},
            "loaded",
            rows_quarantined=2,
            reasons={"missing_identifier": 2},
            data_records=2,
        ),
        Case(
            "missing_required_values",
            "online_orders",
            {"a.csv": _csv(_order("o1", total=""), _order("", total="2"), _order("o3", ts="  "))},
            "loaded",
            rows_quarantined=3,
            reasons={
                "missing_required_value:order_total": 1,
                "missing_required_value:order_id": 1,
                "missing_required_value:ordered_at": 1,
            },
            data_records=3,
        ),
        Case(
            "latin1_bytes_in_csv",
            "online_orders",
            {"a.csv": _csv(_order("o1", account="Jos\xe9"), _order("o2"), encoding="latin-1")},
            "loaded",
            rows_loaded=1,
            rows_quarantined=1,
            reasons={"malformed_row:invalid_encoding": 1},
            data_records=2,
            extra_checks=(_latin1_nothing_dropped,),
        ),
    ]


CASES: list[Case] = _cases()
for _index, _case in enumerate(CASES):
    _case.partition_date = FIRST_DATE + dt.timedelta(days=_index)
CASE_IDS = [c.id for c in CASES]


def build_corpus(landing_dir: Path, ids: list[str] | None = None) -> list[Case]:
    """Write the corpus (or the named cases) under ``landing_dir``; returns the cases written."""
    chosen = [c for c in CASES if ids is None or c.id in ids]
    for case in chosen:
        case.write(landing_dir)
    return chosen

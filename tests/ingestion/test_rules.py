"""Single-value rules per logical type, evaluated with the loader's own SQL in DuckDB,
plus a round trip through the real loader for the stored (typed) values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from orchestration.ingestion.contract import Column, Source
from orchestration.ingestion.loader import load_partitions, parse_expression, reason_expressions

OK = None  # no reason expected
CASES = [
    # timestamp: ISO-8601, offset converted to UTC, none means UTC
    ("timestamp", "2026-01-02T10:00:00+08:00", dt.datetime(2026, 1, 2, 2, 0), OK),
    ("timestamp", "2026-01-02T10:00:00Z", dt.datetime(2026, 1, 2, 10, 0), OK),
    ("timestamp", "2026-01-02T10:00:00.5-05:30", dt.datetime(2026, 1, 2, 15, 30, 0, 500000), OK),
    ("timestamp", "2026-01-02 10:00:00", dt.datetime(2026, 1, 2, 10, 0), OK),
    ("timestamp", "2026-01-02", dt.datetime(2026, 1, 2), OK),
    ("timestamp", " 2026-01-02T10:00:00Z ", dt.datetime(2026, 1, 2, 10, 0), OK),
    ("timestamp", "garbage", None, "invalid_timestamp:v"),
    ("timestamp", "2026-13-01T00:00:00", None, "invalid_timestamp:v"),
    ("timestamp", "2026-02-30", None, "invalid_timestamp:v"),
    ("timestamp", "1767312000", None, "invalid_timestamp:v"),
    ("timestamp", "", None, OK),
    ("timestamp", "   ", None, OK),
    # date: YYYY-MM-DD; a timestamp is truncated (to its own local date, not converted to UTC)
    ("date", "2026-01-02", dt.date(2026, 1, 2), OK),
    ("date", "2026-01-02T23:30:00", dt.date(2026, 1, 2), OK),
    ("date", "2026-01-02T23:30:00-05:00", dt.date(2026, 1, 2), OK),
    ("date", "02/01/2026", None, "invalid_date:v"),
    ("date", "2026-02-30", None, "invalid_date:v"),
    ("date", "garbage", None, "invalid_date:v"),
    # money / number: DECIMAL(18, 4)
    ("money", "10.5", Decimal("10.5"), OK),
    ("money", "-3", Decimal("-3"), OK),
    ("money", " 7.25 ", Decimal("7.25"), OK),
    ("money", "10.12345", Decimal("10.1235"), OK),  # rounded to 4 places
    ("money", "1e3", Decimal("1000"), OK),
    ("money", "1,000.00", None, "invalid_number:v"),
    ("money", "$10", None, "invalid_number:v"),
    ("money", "NaN", None, "invalid_number:v"),
    ("money", "99999999999999999999", None, "invalid_number:v"),
    ("number", "abc", None, "invalid_number:v"),
    ("number", "0.25", Decimal("0.25"), OK),
    # integer: whole numbers only
    ("integer", "7", 7, OK),
    ("integer", "+2", 2, OK),
    ("integer", " -3 ", -3, OK),
    ("integer", "007", 7, OK),
    ("integer", "1.5", None, "invalid_integer:v"),
    ("integer", "1e3", None, "invalid_integer:v"),
    ("integer", "1,000", None, "invalid_integer:v"),
    ("integer", "99999999999999999999", None, "invalid_integer:v"),
    ("integer", "x", None, "invalid_integer:v"),
    # boolean: true/false, t/f, yes/no, y/n, 1/0, any case
    ("boolean", "Yes", True, OK),
    ("boolean", "Y", True, OK),
    ("boolean", "TRUE", True, OK),
    ("boolean", "1", True, OK),
    ("boolean", " t ", True, OK),
    ("boolean", "0", False, OK),
    ("boolean", "No", False, OK),
    ("boolean", "f", False, OK),
    ("boolean", "maybe", None, "invalid_boolean:v"),
    ("boolean", "2", None, "invalid_boolean:v"),
    # email: kept as written, validated once trimmed
    ("email", " A@B.com ", " A@B.com ", OK),
    ("email", "a@b.c", "a@b.c", OK),
    ("email", "a@b", "a@b", "invalid_email:v"),
    ("email", "a b@c.com", "a b@c.com", "invalid_email:v"),
    ("email", "a@@b.com", "a@@b.com", "invalid_email:v"),
    ("email", "@b.com", "@b.com", "invalid_email:v"),
    # phone: digits with + space . - ( ); 7 to 15 digits
    ("phone", "+86 138 0013 8000", "+86 138 0013 8000", OK),
    ("phone", "(020) 7946-0958", "(020) 7946-0958", OK),
    ("phone", "555.123.4567", "555.123.4567", OK),
    ("phone", "1234567", "1234567", OK),
    ("phone", "123456", "123456", "invalid_phone:v"),
    ("phone", "1234567890123456", "1234567890123456", "invalid_phone:v"),
    ("phone", "12-34", "12-34", "invalid_phone:v"),
    ("phone", "call me", "call me", "invalid_phone:v"),
    ("phone", "+44 20 7946 0958 ext 1", "+44 20 7946 0958 ext 1", "invalid_phone:v"),
    # text: kept as written, blank becomes NULL
    ("text", "  x  ", "  x  ", OK),
    ("text", "", None, OK),
    ("text", "   ", None, OK),
]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    connection = duckdb.connect(str(tmp_path_factory.mktemp("rules") / "w.duckdb"))
    connection.execute("set TimeZone = 'UTC'")  # as load_partitions does
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("logical_type", "value", "parsed", "reason"), CASES, ids=[f"{c[0]}:{c[1]!r}" for c in CASES]
)
def test_single_value_rule(con, logical_type, value, parsed, reason):
    column = Column("v", logical_type)
    checks = reason_expressions(Source("t", "test", (column,), key=()), ["v"])
    got_parsed, got_reasons = con.execute(
        f"select {parse_expression(column)}, list_filter([{', '.join(checks)}], r -> r is not null) "
        "from (select ?::varchar as v)",
        [value],
    ).fetchone()
    assert got_reasons == ([reason] if reason else [])
    assert got_parsed == parsed


@pytest.mark.parametrize(
    ("required", "value", "reasons"),
    [
        (True, "", ["missing_required_value:v"]),
        (True, "  ", ["missing_required_value:v"]),
        (True, "oops", ["invalid_integer:v"]),
        (False, "", []),
    ],
)
def test_required_rule(con, required, value, reasons):
    source = Source("t", "test", (Column("v", "integer", required=required),), key=())
    checks = reason_expressions(source, ["v"])
    got = con.execute(
        f"select list_filter([{', '.join(checks)}], r -> r is not null) from (select ?::varchar as v)",
        [value],
    ).fetchone()[0]
    assert got == reasons


def test_value_too_long_rule(con):
    source = Source("t", "test", (Column("v"),), key=())
    checks = reason_expressions(source, ["v"])
    sql = f"select list_filter([{', '.join(checks)}], r -> r is not null) from (select ?::varchar as v)"
    assert con.execute(sql, ["x" * 65_535]).fetchone()[0] == []
    assert con.execute(sql, ["x" * 65_536]).fetchone()[0] == ["value_too_long:v"]


def test_stored_types_through_the_loader(tmp_path):
    """The same rules end to end: offsets stored as UTC, booleans and numbers typed in raw.products."""
    folder = tmp_path / "landing" / "products" / "2026-01-02"
    folder.mkdir(parents=True)
    (folder / "p.csv").write_text(
        "sku,name,category,price,is_active,updated_at,margin_rate\n"
        "s1,Tee,tops,10.5,Yes,2026-01-02T10:00:00+08:00,0.25\n"
        "s2,Cap,hats, 3 ,0,2026-01-02,\n"
        "s3,Bag,bags,1,maybe,2026-01-02T10:00:00Z,0.1\n"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    [result] = load_partitions(
        con, tmp_path / "landing", "products", [dt.date(2026, 1, 2)], run_id="r"
    )
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert dict(result.quarantine_reasons) == {"invalid_boolean:is_active": 1}
    assert con.execute(
        "select sku, price, is_active, updated_at, margin_rate from raw.products order by sku"
    ).fetchall() == [
        ("s1", Decimal("10.5"), True, dt.datetime(2026, 1, 2, 2, 0), Decimal("0.25")),
        ("s2", Decimal("3"), False, dt.datetime(2026, 1, 2, 0, 0), None),
    ]

"""Coupon codes: unguessable, unique, idempotent, and redeemable online or in store."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from activations.coupons import (
    ALPHABET,
    CouponCollisionError,
    check_coupons,
    coupon_code,
    coupon_redemptions,
    issue_coupons,
)
from activations.messages import make_send_id
from activations.spec import CouponSpec

SECRET = "test-coupon-secret"
COUPON = CouponSpec(prefix="WB", value="15% off", valid_days=14)
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
CODE = re.compile(r"^WB-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$")


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_code_is_readable_and_keyed_by_secret() -> None:
    send_id = make_send_id("aud_winback_at_risk", "C000001", "2026-03-02", "default")
    code = coupon_code(send_id, SECRET, "WB")
    assert CODE.match(code), code
    assert not set("01ILO") & set(ALPHABET)
    assert coupon_code(send_id, SECRET, "WB") == code
    # Without the secret, the code cannot be derived from the (public) send_id.
    assert coupon_code(send_id, "another-secret", "WB") != code


def test_codes_are_unique_and_idempotent_on_100k_sends(con: duckdb.DuckDBPyConnection) -> None:
    sends = [
        (make_send_id("aud_winback_at_risk", f"C{i:06d}", "2026-03-02", "default"), f"C{i:06d}")
        for i in range(100_000)
    ]
    first = issue_coupons(
        con, campaign="aud_winback_at_risk", sends=sends, coupon=COUPON, secret=SECRET, now=NOW
    )
    assert len(first) == 100_000
    assert len({code for code, _, _ in first.values()}) == 100_000
    assert all(CODE.match(code) for code, _, _ in list(first.values())[:1000])
    assert first[sends[0][0]][1:] == (dt.date(2026, 3, 2), dt.date(2026, 3, 16))

    # A rerun a day later re-issues nothing: same codes, original dates and issue time.
    again = issue_coupons(
        con,
        campaign="aud_winback_at_risk",
        sends=sends[:1000],
        coupon=COUPON,
        secret=SECRET,
        now=NOW + dt.timedelta(days=1),
    )
    assert again == {send_id: first[send_id] for send_id, _ in sends[:1000]}
    assert con.execute(
        "select count(*), count(distinct coupon_code), count(distinct issued_at) "
        "from activation.coupons"
    ).fetchone() == (100_000, 100_000, 1)


def test_a_code_held_by_another_send_is_refused_by_issue_and_by_the_dry_run_check(
    con: duckdb.DuckDBPyConnection,
) -> None:
    first = (make_send_id("aud_winback_at_risk", "C000001", "2026-03-02", "default"), "C000001")
    second = (make_send_id("aud_winback_at_risk", "C000002", "2026-03-02", "default"), "C000002")
    issue_coupons(
        con, campaign="aud_winback_at_risk", sends=[first], coupon=COUPON, secret=SECRET, now=NOW
    )
    # A code already issued to another send (a truncated code, a reused secret) must not be
    # handed out twice.
    con.execute(
        "update activation.coupons set send_id = 'another-send' where send_id = ?", [first[0]]
    )
    for attempt in (
        lambda sends: check_coupons(
            con, campaign="aud_winback_at_risk", sends=sends, coupon=COUPON, secret=SECRET
        ),
        lambda sends: issue_coupons(
            con, campaign="aud_winback_at_risk", sends=sends, coupon=COUPON, secret=SECRET, now=NOW
        ),
    ):
        with pytest.raises(CouponCollisionError, match="1 coupon code collision"):
            attempt([first, second])
    assert con.execute("select count(*) from activation.coupons").fetchone() == (1,)
    # Two sends of one batch with one code are refused too.
    with pytest.raises(CouponCollisionError, match="1 coupon code collision"):
        check_coupons(
            con,
            campaign="aud_winback_at_risk",
            sends=[second, second],
            coupon=COUPON,
            secret=SECRET,
        )
    assert (
        check_coupons(
            con, campaign="aud_winback_at_risk", sends=[second], coupon=COUPON, secret=SECRET
        )
        == 1
    )
    assert con.execute("select count(*) from activation.coupons").fetchone() == (1,)


def test_redemptions_online_and_in_store(con: duckdb.DuckDBPyConnection) -> None:
    sends = [(f"send{i}", f"C{i}") for i in range(4)]
    issued = issue_coupons(
        con, campaign="aud_winback_at_risk", sends=sends, coupon=COUPON, secret=SECRET, now=NOW
    )
    codes = [issued[f"send{i}"][0] for i in range(4)]
    con.execute("create schema marts")
    con.execute(
        """
        create table marts.fct_orders (
            order_id varchar, customer_id varchar, source varchar, coupon_code varchar,
            is_purchase boolean, ordered_at timestamp, net_amount decimal(18, 4)
        )
        """
    )
    con.executemany(
        "insert into marts.fct_orders values (?, ?, ?, ?, ?, ?, ?)",
        [
            # C0 redeems online (typed in lower case), then tries again: the first use counts.
            ("online:1", "C0", "online", codes[0].lower(), True, "2026-03-05 10:00", 80),
            ("online:2", "C0", "online", codes[0], True, "2026-03-06 10:00", 60),
            # C1's code is keyed in at a store till.
            ("pos:1", "C1", "store", f" {codes[1]} ", True, "2026-03-10 10:00", 120),
            # C2's code is used after it expired: not a redemption.
            ("online:3", "C2", "online", codes[2], True, "2026-03-20 10:00", 50),
            # C3's code is used by somebody else: flagged.
            ("pos:2", "C9", "store", codes[3], True, "2026-03-03 10:00", 30),
        ],
    )
    rows = {
        row[0]: row[1:]
        for row in coupon_redemptions(con)
        .select(
            "customer_id, is_redeemed, redeemed_order_id, redeemed_source, "
            "redeemed_by_other_customer"
        )
        .fetchall()
    }
    assert rows == {
        "C0": (True, "online:1", "online", False),
        "C1": (True, "pos:1", "store", False),
        "C2": (False, None, None, False),
        "C3": (True, "pos:2", "store", True),
    }

"""Unique per-person coupon codes, issued at plan time and recorded in `activation.coupons`.

A code is the HMAC of the send_id under a secret, written in an alphabet without look-alike
characters (no 0/O, 1/I/L) so it can be read out at a till: `WB-7KQ3-M9XA-2HTC`. Without the
secret nobody can guess a valid code; with it, the same send_id always yields the same code, so
a rerun of a plan re-issues nothing. Redemption needs no extra plumbing: online orders and store
receipts both carry `coupon_code` into `marts.fct_orders`, and `coupon_redemptions(con)` joins
the two.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from activations.spec import CouponSpec

SCHEMA = "activation"
# 31 symbols (no 0/O, 1/I/L); 12 of them carry about 59 bits, so collisions stay below one in
# 10^4 even after 10 million codes (and a collision is detected, never silently shared).
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_SYMBOLS = 12


class CouponCollisionError(RuntimeError):
    """Two different sends hashed to the same code (astronomically rare); nothing was issued."""


def coupon_code(send_id: str, secret: str, prefix: str) -> str:
    digest = hmac.new(secret.encode(), send_id.encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    symbols = []
    for _ in range(CODE_SYMBOLS):
        number, index = divmod(number, len(ALPHABET))
        symbols.append(ALPHABET[index])
    body = "".join(symbols)
    return f"{prefix}-{body[0:4]}-{body[4:8]}-{body[8:12]}"


def ensure_coupons_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"""
        create table if not exists {SCHEMA}.coupons (
            coupon_code varchar primary key,
            campaign varchar not null,
            customer_id varchar not null,
            send_id varchar not null unique,
            value varchar not null,
            issued_at timestamp not null,
            valid_from date not null,
            valid_until date not null
        )
        """
    )


@contextmanager
def _checked_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str,
    sends: Sequence[tuple[str, str]],
    coupon: CouponSpec,
    secret: str,
) -> Iterator[None]:
    """The codes of `sends` registered as `_coupon_batch` while the block runs, once no
    collision was found: two sends of the batch with one code, or a code already issued to
    another send."""
    batch = pa.table(
        {
            "coupon_code": [coupon_code(send_id, secret, coupon.prefix) for send_id, _ in sends],
            "send_id": [send_id for send_id, _ in sends],
            "customer_id": [customer_id for _, customer_id in sends],
        }
    )
    con.register("_coupon_batch", batch)
    try:
        [(duplicates,)] = con.execute(
            "select count(*) - count(distinct coupon_code) from _coupon_batch"
        ).fetchall()
        [(clashes,)] = con.execute(
            f"""
            select count(*) from _coupon_batch
            join {SCHEMA}.coupons using (coupon_code)
            where coupons.send_id <> _coupon_batch.send_id
            """
        ).fetchall()
        if duplicates or clashes:
            raise CouponCollisionError(
                f"campaign {campaign}: {duplicates + clashes} coupon code collision(s); "
                "rotate COUPON_SIGNING_SECRET or lengthen the code"
            )
        yield
    finally:
        con.unregister("_coupon_batch")


def check_coupons(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str,
    sends: Sequence[tuple[str, str]],
    coupon: CouponSpec,
    secret: str,
) -> int:
    """What :func:`issue_coupons` would do, without writing: the same collision checks.
    Returns how many sends would hold a code (every one of them)."""
    if not sends:
        return 0
    ensure_coupons_table(con)
    with _checked_batch(con, campaign=campaign, sends=sends, coupon=coupon, secret=secret):
        return len(sends)


def issue_coupons(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str,
    sends: Sequence[tuple[str, str]],
    coupon: CouponSpec,
    secret: str,
    now: dt.datetime,
) -> dict[str, tuple[str, dt.date, dt.date]]:
    """Issue (or find) the code of each (send_id, customer_id); returns
    send_id → (coupon_code, valid_from, valid_until).

    Idempotent: a send_id that already has a code keeps it, with its original dates. Codes are
    valid from the plan's date through `valid_days` days later, inclusive.
    """
    if not sends:
        return {}
    ensure_coupons_table(con)
    valid_from = now.date()
    valid_until = valid_from + dt.timedelta(days=coupon.valid_days)
    issued_at = now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now
    with _checked_batch(con, campaign=campaign, sends=sends, coupon=coupon, secret=secret):
        # An anti-join, not ON CONFLICT: DuckDB's conflict path is orders of magnitude slower
        # once the table holds rows (seconds per 50k-row batch instead of milliseconds).
        con.execute(
            f"""
            insert into {SCHEMA}.coupons
            select coupon_code, ?, customer_id, send_id, ?, ?, ?, ?
            from _coupon_batch
            where not exists (
                select 1 from {SCHEMA}.coupons as issued
                where issued.send_id = _coupon_batch.send_id
            )
            """,
            [campaign, coupon.value, issued_at, valid_from, valid_until],
        )
        rows = con.execute(
            f"""
            select coupons.send_id, coupons.coupon_code, coupons.valid_from, coupons.valid_until
            from {SCHEMA}.coupons
            join _coupon_batch using (send_id)
            """
        ).fetchall()
    return {send_id: (code, start, end) for send_id, code, start, end in rows}


def coupon_redemptions(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """One row per issued coupon: who it was issued to and, if redeemed (online or in store)
    within its validity, the first purchase that used it. `redeemed_by_other_customer` flags a
    code used by someone else (a shared code), which results should not count as a conversion.
    """
    ensure_coupons_table(con)
    return con.sql(
        f"""
        with uses as (
            select
                upper(trim(coupon_code)) as coupon_code,
                order_id,
                customer_id,
                source,
                ordered_at,
                net_amount
            from marts.fct_orders
            where coupon_code is not null and is_purchase
        ),

        first_valid_use as (
            select coupons.coupon_code, uses.*exclude (coupon_code)
            from {SCHEMA}.coupons as coupons
            join uses
                on uses.coupon_code = coupons.coupon_code
                and cast(uses.ordered_at as date) between coupons.valid_from and coupons.valid_until
            qualify row_number() over (
                partition by coupons.coupon_code order by uses.ordered_at, uses.order_id
            ) = 1
        )

        select
            coupons.coupon_code,
            coupons.campaign,
            coupons.customer_id,
            coupons.send_id,
            coupons.value,
            coupons.issued_at,
            coupons.valid_from,
            coupons.valid_until,
            first_valid_use.order_id as redeemed_order_id,
            first_valid_use.source as redeemed_source,
            first_valid_use.ordered_at as redeemed_at,
            first_valid_use.net_amount as redeemed_net_amount,
            first_valid_use.order_id is not null as is_redeemed,
            coalesce(first_valid_use.customer_id <> coupons.customer_id, false)
                as redeemed_by_other_customer
        from {SCHEMA}.coupons as coupons
        left join first_valid_use using (coupon_code)
        """
    )

"""Small building blocks for delivery tests and benchmarks: plan N messages into a ledger,
render them, and build channels pointed at the fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb

from activations import ledger
from activations.messages import EmailMessage, PlannedSend, SendRow, SmsMessage, make_send_id

OCCASION = "2026-11-20"


def planned_emails(
    count: int,
    *,
    campaign: str = "newsletter",
    occasion: str = OCCASION,
    variant: str = "a",
    address: Any = None,
    first_name: str = "Zoë",
    holdout_every: int = 0,
) -> list[PlannedSend]:
    """`count` email sends to customers c00000..; `address(i)` overrides the address."""
    sends = []
    for i in range(count):
        customer = f"c{i:05d}"
        sends.append(
            PlannedSend(
                send_id=make_send_id(campaign, customer, occasion, variant),
                campaign=campaign,
                customer_id=customer,
                occasion=occasion,
                variant=variant,
                channel="email",
                is_holdout=bool(holdout_every) and i % holdout_every == 0,
                address=address(i) if address else f"person{i}@example.com",
                context={"first_name": first_name, "last_name": f"Nguyễn{i}"},
            )
        )
    return sends


def planned_sms(
    count: int, *, campaign: str = "sms_promo", occasion: str = OCCASION
) -> list[PlannedSend]:
    return [
        PlannedSend(
            send_id=make_send_id(campaign, f"c{i:05d}", occasion, "a"),
            campaign=campaign,
            customer_id=f"c{i:05d}",
            occasion=occasion,
            variant="a",
            channel="sms",
            is_holdout=False,
            address=f"+4915100{i:05d}",
            context={"first_name": "Zoë"},
        )
        for i in range(count)
    ]


def plan(con: duckdb.DuckDBPyConnection, sends: list[PlannedSend], run_id: str = "plan-1") -> None:
    ledger.record_plan(con, run_id, sends)


def render_email(row: SendRow) -> EmailMessage:
    """Shared html with per-person substitutions, so recipients batch into one request."""
    first = str(row.context.get("first_name", ""))
    last = str(row.context.get("last_name", ""))
    return EmailMessage(
        send_id=row.send_id,
        campaign=row.campaign,
        variant=row.variant,
        to_email=row.address or "",
        to_name=f"{first} {last}".strip() or None,
        subject="News for you, -first_name-",
        html="<p>Hello -first_name-, here is our news.</p>",
        text="Hello -first_name-, here is our news.",
        substitutions={"-first_name-": first},
    )


def render_sms(row: SendRow) -> SmsMessage:
    return SmsMessage(
        send_id=row.send_id,
        campaign=row.campaign,
        variant=row.variant,
        to_phone=row.address or "",
        body=f"Hi {row.context.get('first_name', '')}, 10% off this week. Reply STOP to opt out.",
    )


def consent_table(
    con: duckdb.DuckDBPyConnection,
    customers: Iterable[str],
    *,
    without_email: Iterable[str] = (),
    without_sms: Iterable[str] = (),
) -> None:
    """A minimal `marts.dim_customers` with the consent flags dispatch re-checks."""
    no_email, no_sms = set(without_email), set(without_sms)
    rows = [(c, c not in no_email, c not in no_sms) for c in customers]
    con.execute("create schema if not exists marts")
    con.execute(
        "create or replace table marts.dim_customers "
        "(customer_id varchar, has_email_consent boolean, has_sms_consent boolean)"
    )
    if rows:
        con.executemany("insert into marts.dim_customers values (?, ?, ?)", rows)


def statuses(con: duckdb.DuckDBPyConnection, campaign: str) -> dict[str, str]:
    return dict(
        con.execute(
            f"select send_id, status from {ledger.SCHEMA}.sends where campaign = ?", [campaign]
        ).fetchall()
    )


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)

"""The delivery ledger in the warehouse (schema `activation`).

Tables (all in schema `activation`):

- `sends`: one row per send_id (UNIQUE): campaign, customer_id, occasion, variant, channel,
  is_holdout, address, context (JSON), status, attempt_count, provider_message_id, last_error,
  run_id, planned_at, updated_at, sent_at. Status: planned → in_flight → accepted | rejected |
  unknown; also holdout, suppressed, capped, deferred, held. in_flight is committed before the
  provider call, so a crash leaves evidence that a call may have happened.
- `runs`: one row per plan/dispatch run of a campaign occasion (run_id, campaign, occasion,
  planned_count, holdout_count, suppressed_count, status, started_at, finished_at, override).
- `suppressions`: channel, address, customer_id, reason (unsubscribe, bounce, spamreport,
  sms_stop, manual, erasure), source, created_at. Also `address_sha256`, the SHA-256 of the
  normalised address: dispatch matches on it, so an erasure can blank `address` and the person
  stays suppressed.
- `provider_events`: provider webhook events deduplicated on event_id (sg_event_id), with the
  send_id from custom_args, used to reconcile `unknown` sends. No address is stored: the
  send_id links an event to its person.

Timestamps are naive UTC (`timestamp`), as in the marts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from activations.messages import CHANNELS, PlannedSend

SCHEMA = "activation"

TERMINAL_STATUSES = ("accepted", "rejected", "holdout", "suppressed", "capped")
STATUSES = (
    "planned",
    "in_flight",
    "accepted",
    "rejected",
    "unknown",
    "holdout",
    "suppressed",
    "capped",
    "deferred",
    # Set by activations.holds when the audience guardrail blocks a run; never claimed.
    "held",
)
SUPPRESSION_REASONS = (
    "unsubscribe",
    "group_unsubscribe",
    "bounce",
    "spamreport",
    "dropped",
    "sms_stop",
    "manual",
    "erasure",
)
# A suppression on channel `all` applies to every channel (erasure, a manual block).
ALL_CHANNELS = "all"


@dataclass(frozen=True)
class PlanCounts:
    planned_new: int
    already_planned: int
    holdout: int


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    campaign: str
    occasion: str
    planned_count: int
    holdout_count: int
    status: str
    finished_at: dt.datetime | None


def utc_naive(value: dt.datetime | None = None) -> dt.datetime:
    """`value` (or now) as naive UTC, the ledger's timestamp convention."""
    if value is None:
        value = dt.datetime.now(dt.UTC)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def normalise_address(channel: str, address: str) -> str:
    """Emails are compared trimmed and lower-cased; phones (E.164) without spaces."""
    cleaned = address.strip()
    if channel == "sms":
        return "".join(cleaned.split())
    return cleaned.lower()


# What str.isspace() calls whitespace, for RE2: ASCII \s, the Unicode separators (Z), and the
# few control characters Python also strips (VT, FS-US, NEL).
_SPACE = r"[\s\p{Z}\x{0B}\x{1C}-\x{1F}\x{85}]"


def normalise_address_sql(channel: str, expression: str) -> str:
    """:func:`normalise_address` as a DuckDB expression over ``expression`` (NULL stays NULL)."""
    if channel == "sms":
        return f"regexp_replace({expression}, '{_SPACE}+', '', 'g')"
    return f"lower(regexp_replace({expression}, '^{_SPACE}+|{_SPACE}+$', '', 'g'))"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.sends (
    send_id varchar primary key,
    campaign varchar not null,
    customer_id varchar not null,
    occasion varchar not null,
    variant varchar not null,
    channel varchar not null check (channel in ({_quoted(CHANNELS)})),
    is_holdout boolean not null,
    address varchar,
    context json,
    status varchar not null check (status in ({_quoted(STATUSES)})),
    attempt_count integer not null default 0,
    provider_message_id varchar,
    last_error varchar,
    run_id varchar,
    planned_at timestamp not null,
    updated_at timestamp not null,
    sent_at timestamp
);
create table if not exists {SCHEMA}.runs (
    run_id varchar primary key,
    campaign varchar not null,
    occasion varchar not null,
    planned_count integer,
    holdout_count integer,
    suppressed_count integer,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    override boolean not null default false
);
create table if not exists {SCHEMA}.suppressions (
    channel varchar not null check (channel in ({_quoted((*CHANNELS, ALL_CHANNELS))})),
    address varchar,
    address_sha256 varchar,
    customer_id varchar,
    reason varchar not null check (reason in ({_quoted(SUPPRESSION_REASONS)})),
    source varchar not null,
    created_at timestamp not null,
    check (address_sha256 is not null or customer_id is not null)
);
create table if not exists {SCHEMA}.provider_events (
    event_id varchar primary key,
    provider varchar not null,
    event_type varchar not null,
    send_id varchar,
    campaign varchar,
    reason varchar,
    occurred_at timestamp,
    received_at timestamp not null
);
"""


_TABLES = ("sends", "runs", "suppressions", "provider_events")


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create the `activation` schema and its tables if they do not exist (idempotent)."""
    # Running the DDL costs a catalog write each time and an event-triggered dispatch calls
    # this several times per message; binding a query over every table is far cheaper.
    try:
        con.execute(f"select 1 from {', '.join(f'{SCHEMA}.{t}' for t in _TABLES)} limit 0")
        return
    except duckdb.CatalogException:
        pass
    con.execute(_DDL)


def _validate_plan(sends: Sequence[PlannedSend]) -> None:
    seen: set[str] = set()
    for send in sends:
        where = f"planned send {send.send_id!r} of campaign {send.campaign!r}"
        if send.send_id in seen:
            raise ValueError(f"{where} appears twice in one plan")
        seen.add(send.send_id)
        if send.channel not in CHANNELS:
            raise ValueError(f"{where}: channel {send.channel!r} is not one of {CHANNELS}")
        if send.channel in ("email", "sms") and not send.is_holdout and not send.address:
            raise ValueError(f"{where}: an {send.channel} send needs an address")
        if send.context_json is not None and send.context:
            raise ValueError(f"{where}: give its context as a dict or as JSON text, not both")


def record_plan(
    con: duckdb.DuckDBPyConnection, run_id: str, sends: Sequence[PlannedSend]
) -> PlanCounts:
    """Insert planned sends in one transaction; send_ids already in the ledger are left as they
    are (a rerun never re-plans a message). Holdout rows get status `holdout`.

    `holdout` counts the holdout rows of `sends`, new or not, so a rerun reports the same plan.
    """
    _validate_plan(sends)
    ensure_ledger(con)
    if not sends:
        return PlanCounts(planned_new=0, already_planned=0, holdout=0)
    now = utc_naive()
    table = pa.table(
        {
            "send_id": [s.send_id for s in sends],
            "campaign": [s.campaign for s in sends],
            "customer_id": [s.customer_id for s in sends],
            "occasion": [s.occasion for s in sends],
            "variant": [s.variant for s in sends],
            "channel": [s.channel for s in sends],
            "is_holdout": [s.is_holdout for s in sends],
            "address": [
                normalise_address(s.channel, s.address) if s.address else None for s in sends
            ],
            "context": [
                s.context_json
                if s.context_json is not None
                else json.dumps(s.context, default=str, ensure_ascii=False)
                for s in sends
            ],
            "status": ["holdout" if s.is_holdout else "planned" for s in sends],
            "planned_at": [utc_naive(s.planned_at) if s.planned_at else now for s in sends],
        }
    )
    con.register("_planned_sends", table)
    try:
        con.execute("begin")
        inserted = con.execute(
            f"""
            insert into {SCHEMA}.sends (
                send_id, campaign, customer_id, occasion, variant, channel, is_holdout, address,
                context, status, attempt_count, run_id, planned_at, updated_at
            )
            select send_id, campaign, customer_id, occasion, variant, channel, is_holdout,
                   address, context::json, status, 0, ?, planned_at, ?
            from _planned_sends
            on conflict do nothing
            """,
            [run_id, now],
        ).fetchone()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_planned_sends")
    planned_new = int(inserted[0]) if inserted else 0
    return PlanCounts(
        planned_new=planned_new,
        already_planned=len(sends) - planned_new,
        holdout=sum(1 for s in sends if s.is_holdout),
    )


def _plan_rows(query: str, channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of {CHANNELS}")
    address = normalise_address_sql(channel, "address")
    # No copy of the plan is made: the checks read only ids and addresses (DuckDB leaves the
    # context column of `query` uncomputed), and the insert streams the rows, so memory stays
    # flat however large the audience.
    return f"""
        select send_id, campaign, customer_id, occasion, variant, is_holdout,
               {address} as address, context
        from ({query})
    """


def _check_plan(
    con: duckdb.DuckDBPyConnection, plan: str, params: dict[str, Any], channel: str
) -> None:
    problem = con.execute(
        f"""
        select send_id, campaign,
               case when count(*) over (partition by send_id) > 1
                   then 'appears twice in one plan'
                   else 'needs an address' end
        from ({plan})
        qualify count(*) over (partition by send_id) > 1
            or ($needs_address and not is_holdout and coalesce(address, '') = '')
        limit 1
        """,
        {**params, "needs_address": channel in ("email", "sms")},
    ).fetchone()
    if problem:
        send_id, campaign, what = problem
        raise ValueError(f"planned send {send_id!r} of campaign {campaign!r} {what}")


def record_plan_query(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    query: str,
    params: dict[str, Any],
    *,
    channel: str,
    planned_at: dt.datetime,
) -> PlanCounts:
    """:func:`record_plan` for a whole plan at once, set-based: ``query`` yields send_id,
    campaign, customer_id, occasion, variant, is_holdout, address (raw) and context (JSON text,
    NULL for holdout rows). The same rules hold: one transaction, send_ids already in the
    ledger are left as they are, a send_id twice in one plan or an email/SMS send without an
    address is refused with the send named."""
    plan = _plan_rows(query, channel)
    ensure_ledger(con)
    now = utc_naive()
    con.execute("begin")
    try:
        _check_plan(con, plan, params, channel)
        total, holdout = con.execute(
            f"select count(*), count(*) filter (where is_holdout) from ({plan})", params
        ).fetchone()
        (inserted,) = con.execute(
            f"""
            insert into {SCHEMA}.sends (
                send_id, campaign, customer_id, occasion, variant, channel, is_holdout, address,
                context, status, attempt_count, run_id, planned_at, updated_at
            )
            select send_id, campaign, customer_id, occasion, variant, $channel, is_holdout,
                   address, context::json,
                   case when is_holdout then 'holdout' else 'planned' end, 0, $run_id,
                   $planned_at, $now
            from ({plan})
            order by send_id
            on conflict do nothing
            """,
            {
                **params,
                "channel": channel,
                "run_id": run_id,
                "planned_at": utc_naive(planned_at),
                "now": now,
            },
        ).fetchone()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return PlanCounts(
        planned_new=int(inserted), already_planned=int(total) - int(inserted), holdout=int(holdout)
    )


def count_plan_query(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any], *, channel: str
) -> PlanCounts:
    """What :func:`record_plan_query` would record, without writing: the same checks (a send_id
    twice, an email/SMS send without an address) and the same counts, sends already in the
    ledger counted as already planned. A dry run uses it: recording a 1M-row plan and deleting
    it again cost 30 s at 1M customers, almost all of it in the ledger's send_id index."""
    plan = _plan_rows(query, channel)
    ensure_ledger(con)
    _check_plan(con, plan, params, channel)
    total, holdout, already = con.execute(
        f"""
        select
            count(*),
            count(*) filter (where is_holdout),
            count(*) filter (where exists (
                select 1 from {SCHEMA}.sends as s where s.send_id = p.send_id
            ))
        from ({plan}) as p
        """,
        params,
    ).fetchone()
    return PlanCounts(
        planned_new=int(total) - int(already), already_planned=int(already), holdout=int(holdout)
    )


def suppressed_addresses(con: duckdb.DuckDBPyConnection, channel: str) -> set[str]:
    """Addresses (lower-cased email or E.164 phone) that must not receive `channel` messages."""
    ensure_ledger(con)
    rows = con.execute(
        f"select distinct address from {SCHEMA}.suppressions "
        "where channel in (?, ?) and address is not null",
        [channel, ALL_CHANNELS],
    ).fetchall()
    return {row[0] for row in rows}


def add_suppression(
    con: duckdb.DuckDBPyConnection,
    *,
    channel: str,
    address: str | None,
    customer_id: str | None,
    reason: str,
    source: str,
    now: dt.datetime | None = None,
) -> bool:
    """Record that `address` (or `customer_id`) must not get `channel` messages. Idempotent:
    returns False when the same suppression already exists."""
    if channel not in (*CHANNELS, ALL_CHANNELS):
        raise ValueError(
            f"suppression channel {channel!r} is not one of {(*CHANNELS, ALL_CHANNELS)}"
        )
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"suppression reason {reason!r} is not one of {SUPPRESSION_REASONS}")
    if not address and not customer_id:
        raise ValueError(
            f"a {reason} suppression from {source!r} needs an address or a customer_id"
        )
    ensure_ledger(con)
    normalised = normalise_address(channel, address) if address else None
    inserted = con.execute(
        f"""
        insert into {SCHEMA}.suppressions
            (channel, address, address_sha256, customer_id, reason, source, created_at)
        select ?, ?::varchar, sha256(?::varchar), ?::varchar, ?, ?, ?
        where not exists (
            select 1 from {SCHEMA}.suppressions
            where channel = ? and reason = ?
              and address_sha256 is not distinct from sha256(?::varchar)
              and customer_id is not distinct from ?::varchar
        )
        """,
        [
            channel,
            normalised,
            normalised,
            customer_id,
            reason,
            source,
            utc_naive(now),
            channel,
            reason,
            normalised,
            customer_id,
        ],
    ).fetchone()
    return bool(inserted and inserted[0])


def remove_suppression(
    con: duckdb.DuckDBPyConnection, *, channel: str, address: str, reasons: Sequence[str]
) -> int:
    """Lift suppressions of `address` for the given reasons (an SMS START, a group resubscribe)."""
    ensure_ledger(con)
    normalised = normalise_address(channel, address)
    removed = con.execute(
        f"delete from {SCHEMA}.suppressions where channel = ? "
        "and address_sha256 = sha256(?::varchar) and reason in (select unnest(?::varchar[]))",
        [channel, normalised, list(reasons)],
    ).fetchone()
    return int(removed[0]) if removed else 0


def recent_send_counts(
    con: duckdb.DuckDBPyConnection, channel: str, since: dt.datetime
) -> dict[str, int]:
    """customer_id → messages accepted or in flight (or unknown) on `channel` since `since`,
    for frequency caps at plan time and again at dispatch time."""
    ensure_ledger(con)
    rows = con.execute(
        f"""
        select customer_id, count(*) from {SCHEMA}.sends
        where channel = ? and status in ('accepted', 'in_flight', 'unknown') and sent_at >= ?
        group by customer_id
        """,
        [channel, utc_naive(since)],
    ).fetchall()
    return {customer_id: int(count) for customer_id, count in rows}


def start_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    campaign: str,
    occasion: str,
    now: dt.datetime | None = None,
) -> None:
    """Open (or, for a retried run with the same id, reopen) a run row with status `running`."""
    ensure_ledger(con)
    con.execute(
        f"""
        insert into {SCHEMA}.runs (run_id, campaign, occasion, status, started_at)
        values (?, ?, ?, 'running', ?)
        on conflict (run_id) do update set
            status = 'running', started_at = excluded.started_at, finished_at = null
        """,
        [run_id, campaign, occasion, utc_naive(now)],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    status: str,
    planned_count: int,
    holdout_count: int,
    override: bool = False,
    suppressed_count: int | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Close a run. `suppressed_count` defaults to the ledger's suppressed rows of the run's
    campaign occasion."""
    ensure_ledger(con)
    updated = con.execute(
        f"""
        update {SCHEMA}.runs set
            status = ?,
            planned_count = ?,
            holdout_count = ?,
            override = ?,
            finished_at = ?,
            suppressed_count = coalesce(?::integer, (
                select count(*) from {SCHEMA}.sends s
                where s.campaign = runs.campaign and s.occasion = runs.occasion
                  and s.status = 'suppressed'
            ))
        where run_id = ?
        """,
        [status, planned_count, holdout_count, override, utc_naive(now), suppressed_count, run_id],
    ).fetchone()
    if not updated or not updated[0]:
        raise ValueError(f"finish_run: run {run_id!r} was never started (no row in {SCHEMA}.runs)")


def last_successful_run(con: duckdb.DuckDBPyConnection, campaign: str) -> RunRecord | None:
    """The latest run of `campaign` whose status is `succeeded` (the guardrail's baseline)."""
    ensure_ledger(con)
    row = con.execute(
        f"""
        select run_id, campaign, occasion, planned_count, holdout_count, status, finished_at
        from {SCHEMA}.runs
        where campaign = ? and status = 'succeeded'
        order by finished_at desc nulls last, started_at desc
        limit 1
        """,
        [campaign],
    ).fetchone()
    if row is None:
        return None
    return RunRecord(
        run_id=row[0],
        campaign=row[1],
        occasion=row[2],
        planned_count=int(row[3] or 0),
        holdout_count=int(row[4] or 0),
        status=row[5],
        finished_at=row[6],
    )


def status_counts(
    con: duckdb.DuckDBPyConnection, campaign: str, channel: str | None = None
) -> dict[str, int]:
    """status → rows of `campaign` (optionally one channel), for reports and tests."""
    ensure_ledger(con)
    rows = con.execute(
        f"select status, count(*) from {SCHEMA}.sends where campaign = ? "
        "and (?::varchar is null or channel = ?) group by status",
        [campaign, channel, channel],
    ).fetchall()
    return {status: int(count) for status, count in rows}

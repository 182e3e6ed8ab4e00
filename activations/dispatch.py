"""Dispatch: send the planned rows of a campaign through a channel, exactly once per send_id.

For each run (R1, R2, R4):

1. rows left `in_flight` by a run that stopped become `unknown`; `unknown` rows with a
   provider event are settled; those without one past the reconciliation window go back to
   `planned` while attempts remain (see `activations.reconcile`);
2. `planned` (and `deferred`) rows are claimed in chunks, in planning order; just before a
   chunk is sent, suppressions (by address hash or customer), consent in the single customer
   view and the frequency cap are checked again: failing rows become `suppressed` / `capped`
   and are never sent;
3. each provider request's rows are marked `in_flight` and COMMITTED before the HTTP call,
   then set to the answer: `accepted`, `rejected`, `unknown` (may have been queued: never
   resent blindly), back to `planned` (certainly not processed: 429 beyond patience,
   unreachable) or `suppressed` (the provider reports an opt-out).

A crash at any point leaves each row either untouched (`planned`), or `in_flight`/`unknown`
(reconciled before any resend), or settled: no send_id is sent twice, none is lost.

Dry-run (`DryRunChannel`) runs the same steps inside one transaction that is rolled back: the
report shows what a live run would do, the ledger is unchanged and no client exists to call.

Logs carry send_id counts and opaque ids only, never addresses or names.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import duckdb

from activations.channels.base import (
    ACCEPTED,
    NOT_SENT,
    REJECTED,
    SUPPRESSED,
    UNKNOWN,
    Channel,
    DryRunChannel,
    Outcome,
)
from activations.ledger import ALL_CHANNELS, SCHEMA, add_suppression, ensure_ledger, utc_naive
from activations.messages import SendRow
from activations.reconcile import (
    DEFAULT_RECONCILE_WINDOW,
    reconcile_from_events,
    recover_in_flight,
    release_unknown,
)

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 5000
DEFAULT_CONSENT = {"email": "email", "sms": "sms", "webhook": None, "ad_list": None}
# Suppression lists each channel's rows are checked against, beyond its own and `all`:
# an ad-list row is matched on the email and the phone it would upload.
_SUPPRESSION_CHANNELS = {
    "email": ("email",),
    "sms": ("sms",),
    "webhook": ("webhook",),
    "ad_list": ("ad_list", "email", "sms"),
}
_USE_CHANNEL_DEFAULT: Any = object()
# Both end up in SQL text: only plain identifiers are accepted.
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class FrequencyCapLike(Protocol):
    max_messages: int
    per_days: int


class DispatchError(RuntimeError):
    """The run stopped for a reason a person must fix (bad key, wrong host, shared content
    refused); the rows it concerns are back in `planned`, nothing was lost."""


@dataclass
class DispatchReport:
    campaign: str
    channel: str
    destination: str
    dry_run: bool
    recovered_in_flight: int = 0
    reconciled_accepted: int = 0
    reconciled_rejected: int = 0
    released_for_retry: int = 0
    held_for_review: int = 0
    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    suppressed: int = 0
    capped: int = 0
    deferred: int = 0
    not_sent: int = 0
    render_failed: int = 0
    requests: int = 0
    halted: str | None = None
    seconds: float = 0.0
    sample_send_ids: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        """Counts and opaque ids only, safe for Dagster metadata and logs."""
        return asdict(self)


def _now_callable(
    now: dt.datetime | Callable[[], dt.datetime] | None,
) -> Callable[[], dt.datetime]:
    if now is None:
        return lambda: dt.datetime.now(dt.UTC)
    if callable(now):
        return now
    fixed = now
    return lambda: fixed


class _Writes:
    """Live: every step commits on its own. Dry-run: one transaction, rolled back at the end."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dry_run: bool) -> None:
        self.con = con
        self.dry_run = dry_run

    def __enter__(self) -> _Writes:
        if self.dry_run:
            self.con.execute("begin")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.dry_run:
            self.con.execute("rollback")

    def step(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.dry_run:
            return fn(*args, **kwargs)
        self.con.execute("begin")
        try:
            value = fn(*args, **kwargs)
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")
        return value


def _count(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


def _table_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, _, name = relation.rpartition(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema or "main", name],
        ).fetchone()[0]
    )


def dispatch(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str,
    channel: Channel,
    render: Callable[[SendRow], Any],
    run_id: str | None = None,
    occasion: str | None = None,
    consent: str | None = _USE_CHANNEL_DEFAULT,
    consent_table: str = "marts.dim_customers",
    frequency_cap: FrequencyCapLike | None = None,
    is_window_open: Callable[[dt.datetime], bool] | None = None,
    max_attempts: int = 3,
    reconcile_window: dt.timedelta = DEFAULT_RECONCILE_WINDOW,
    max_messages: int | None = None,
    chunk_size: int | None = None,
    before_chunk: Callable[[duckdb.DuckDBPyConnection], Any] | None = None,
    now: dt.datetime | Callable[[], dt.datetime] | None = None,
    sample_size: int = 10,
) -> DispatchReport:
    """Send the claimable rows of `campaign` on `channel.channel` (optionally one `occasion`).

    - `render(row)` turns a ledger row into the channel's message; a row it cannot render is
      `rejected` with the exception type (never its text, which may quote the row).
    - `consent`: `email`/`sms`/`push` re-checks `has_<consent>_consent` in `consent_table`
      (a customer missing from it counts as no consent); `none`/None skips the check. Defaults
      to the channel's own consent for email and SMS.
    - `frequency_cap` (`max_messages` per `per_days`, as in the activation spec) counts
      accepted, in-flight and unknown messages on the channel, this run's included.
    - `is_window_open(now)` False defers every remaining row to the next run.
    - `before_chunk(con)` runs before each chunk in live mode, e.g. ingesting spooled webhook
      events so an unsubscribe that arrives mid-run applies to the next batch.
    - `max_messages` caps messages handed to the provider in this run (a budget).
    - `chunk_size` rows are re-checked and rendered at a time (default: 5000, or one full
      provider batch if larger), bounding memory for million-row campaigns.
    """
    started = time.perf_counter()
    clock = _now_callable(now)
    ensure_ledger(con)
    dry_run = isinstance(channel, DryRunChannel)
    if consent is _USE_CHANNEL_DEFAULT:
        consent = DEFAULT_CONSENT.get(channel.channel)
    if consent is not None and not _IDENTIFIER.match(consent):
        raise ValueError(f"dispatch of {campaign}: consent {consent!r} is not a consent name")
    if not _RELATION.match(consent_table):
        raise ValueError(
            f"dispatch of {campaign}: consent_table {consent_table!r} is not a table name"
        )
    consent_column = None if consent in (None, "none") else f"has_{consent}_consent"
    if consent_column and not _table_exists(con, consent_table):
        raise DispatchError(
            f"dispatch of {campaign}: consent check needs {consent_table}.{consent_column}, "
            f"but {consent_table} does not exist (build the marts first, or pass consent='none' "
            "for a channel that needs none)"
        )
    chunk = chunk_size or max(DEFAULT_CHUNK_SIZE, channel.max_batch_size)
    run_id = run_id or f"dispatch-{campaign}-{int(time.time() * 1000)}"
    report = DispatchReport(
        campaign=campaign, channel=channel.channel, destination=channel.destination, dry_run=dry_run
    )
    scope = [campaign, channel.channel, occasion, occasion]
    scope_sql = "campaign = ? and channel = ? and (?::varchar is null or occasion = ?)"

    with _Writes(con, dry_run) as writes:
        stamp = utc_naive(clock())
        report.recovered_in_flight = writes.step(
            lambda: recover_in_flight(con, campaign=campaign, channel=channel.channel, now=stamp)
        )
        counts = writes.step(lambda: reconcile_from_events(con, campaign=campaign, now=stamp))
        report.reconciled_accepted, report.reconciled_rejected = counts.accepted, counts.rejected
        # A destination that deduplicates on send_id makes a resend of an unknown row safe.
        window = dt.timedelta(0) if channel.idempotent else reconcile_window
        release = writes.step(
            lambda: release_unknown(
                con,
                campaign=campaign,
                channel=channel.channel,
                older_than=stamp - window,
                max_attempts=max_attempts,
                now=stamp,
            )
        )
        report.released_for_retry, report.held_for_review = (
            release.released,
            release.held_for_review,
        )

        cursor: tuple[dt.datetime, str] | None = None
        budget = max_messages
        while report.halted is None and (budget is None or budget > 0):
            if before_chunk is not None and not dry_run:
                before_chunk(con)
            current = clock()
            if is_window_open is not None and not is_window_open(
                current if current.tzinfo else current.replace(tzinfo=dt.UTC)
            ):
                report.deferred += writes.step(
                    _defer_all, con, scope_sql, scope, utc_naive(current)
                )
                break
            ids = _claim(con, scope_sql, scope, cursor, chunk)
            if not ids:
                break
            cursor = (ids[-1][0], ids[-1][1])
            send_ids = [send_id for _, send_id in ids]
            stamp = utc_naive(current)
            suppressed, capped = writes.step(
                _recheck,
                con,
                send_ids,
                channel=channel.channel,
                consent_table=consent_table,
                consent_column=consent_column,
                frequency_cap=frequency_cap,
                now=stamp,
            )
            report.suppressed += suppressed
            report.capped += capped
            rows = _load_rows(con, send_ids)
            if budget is not None:
                rows = rows[:budget]
            messages, failures = _render_all(rows, render)
            if failures:
                report.render_failed += len(failures)
                writes.step(_record, con, failures, now=stamp)
            for batch in channel.batches(messages):
                sent_ids = [m.send_id for m in batch]
                batch_stamp = utc_naive(clock())
                writes.step(_mark_in_flight, con, sent_ids, run_id, batch_stamp)
                report.attempted += len(batch)
                result = channel.send(batch)
                report.requests += result.requests
                writes.step(_record, con, result.outcomes, now=utc_naive(clock()))
                _tally(report, result.outcomes, sample_size)
                if result.halt:
                    report.halted = result.halt
                    if result.fatal:
                        report.seconds = round(time.perf_counter() - started, 3)
                        log.error(
                            "dispatch %s/%s stopped: %s (%s)",
                            campaign,
                            channel.destination,
                            result.halt,
                            _summary(report),
                        )
                        raise DispatchError(
                            f"dispatch of {campaign} through {channel.destination} stopped: "
                            f"{result.halt}. Unsent rows are back in 'planned'; fix the "
                            "configuration and rerun."
                        )
                    break
            if budget is not None:
                budget -= len(messages)

    report.seconds = round(time.perf_counter() - started, 3)
    log.info(
        "dispatch %s/%s%s: %s",
        campaign,
        channel.destination,
        " (dry-run, nothing sent)" if dry_run else "",
        _summary(report),
    )
    return report


def _summary(report: DispatchReport) -> str:
    return (
        f"{report.accepted} accepted, {report.rejected} rejected, {report.unknown} unknown, "
        f"{report.suppressed} suppressed, {report.capped} capped, {report.not_sent} not sent, "
        f"{report.requests} requests, {report.reconciled_accepted + report.reconciled_rejected} "
        f"reconciled, {report.released_for_retry} released, {report.held_for_review} held"
        + (f"; halted: {report.halted}" if report.halted else "")
    )


def _defer_all(
    con: duckdb.DuckDBPyConnection, scope_sql: str, scope: list[Any], now: dt.datetime
) -> int:
    return _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set status = 'deferred', updated_at = ?,
                last_error = 'send window closed at dispatch'
            where {scope_sql} and status in ('planned', 'deferred')
            """,
            [now, *scope],
        )
    )


def _claim(
    con: duckdb.DuckDBPyConnection,
    scope_sql: str,
    scope: list[Any],
    cursor: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[tuple[dt.datetime, str]]:
    # Keyset pagination: rows left planned by this run (a budget cut) are never re-read in it.
    after = "true"
    params = [*scope]
    if cursor is not None:
        after = "(planned_at > ? or (planned_at = ? and send_id > ?))"
        params += [cursor[0], cursor[0], cursor[1]]
    return con.execute(
        f"""
        select planned_at, send_id from {SCHEMA}.sends
        where {scope_sql} and status in ('planned', 'deferred') and {after}
        order by planned_at, send_id
        limit {int(limit)}
        """,
        params,
    ).fetchall()


def _recheck(
    con: duckdb.DuckDBPyConnection,
    send_ids: list[str],
    *,
    channel: str,
    consent_table: str,
    consent_column: str | None,
    frequency_cap: FrequencyCapLike | None,
    now: dt.datetime,
) -> tuple[int, int]:
    lists = [*_SUPPRESSION_CHANNELS[channel], ALL_CHANNELS]
    # An ad-list row has no address of its own; it is matched on the identifiers it uploads.
    hashes = (
        "[sha256(s.address)]"
        if channel in ("email", "sms")
        else "[sha256(lower(trim(s.context->>'email'))), sha256(trim(s.context->>'phone'))]"
    )
    suppressed = _count(
        con.execute(
            f"""
            update {SCHEMA}.sends as s set
                status = 'suppressed',
                updated_at = ?,
                last_error = 'suppressed at dispatch: ' || (
                    select min(x.reason) from {SCHEMA}.suppressions x
                    where x.channel in (select unnest(?::varchar[]))
                      and (list_contains({hashes}, x.address_sha256) or x.customer_id = s.customer_id)
                )
            where s.send_id in (select unnest(?::varchar[]))
              and s.status in ('planned', 'deferred')
              and exists (
                  select 1 from {SCHEMA}.suppressions x
                  where x.channel in (select unnest(?::varchar[]))
                    and (list_contains({hashes}, x.address_sha256) or x.customer_id = s.customer_id)
              )
            """,
            [now, lists, send_ids, lists],
        )
    )
    if consent_column:
        suppressed += _count(
            con.execute(
                f"""
                update {SCHEMA}.sends as s set
                    status = 'suppressed',
                    updated_at = ?,
                    last_error = 'suppressed at dispatch: no {consent_column} in {consent_table}'
                where s.send_id in (select unnest(?::varchar[]))
                  and s.status in ('planned', 'deferred')
                  and not exists (
                      select 1 from {consent_table} c
                      where c.customer_id = s.customer_id and c.{consent_column}
                  )
                """,
                [now, send_ids],
            )
        )
    capped = 0
    if frequency_cap is not None:
        since = now - dt.timedelta(days=frequency_cap.per_days)
        capped = _count(
            con.execute(
                f"""
                update {SCHEMA}.sends as s set
                    status = 'capped',
                    updated_at = $now,
                    last_error = 'frequency cap at dispatch: '
                        || {int(frequency_cap.max_messages)} || ' per '
                        || {int(frequency_cap.per_days)} || ' days'
                from (
                    select c.send_id
                    from (
                        select send_id, customer_id,
                               row_number() over (
                                   partition by customer_id order by planned_at, send_id
                               ) as position
                        from {SCHEMA}.sends
                        where send_id in (select unnest($send_ids::varchar[]))
                          and status in ('planned', 'deferred')
                    ) c
                    left join (
                        select customer_id, count(*) as sent
                        from {SCHEMA}.sends
                        where channel = $channel and status in ('accepted', 'in_flight', 'unknown')
                          and sent_at >= $since
                        group by customer_id
                    ) r on r.customer_id = c.customer_id
                    where coalesce(r.sent, 0) + c.position > {int(frequency_cap.max_messages)}
                ) over_cap
                where s.send_id = over_cap.send_id
                """,
                {"now": now, "send_ids": send_ids, "channel": channel, "since": since},
            )
        )
    return suppressed, capped


def _load_rows(con: duckdb.DuckDBPyConnection, send_ids: list[str]) -> list[SendRow]:
    rows = con.execute(
        f"""
        select send_id, campaign, customer_id, occasion, variant, channel, address,
               context::varchar, attempt_count
        from {SCHEMA}.sends
        where send_id in (select unnest(?::varchar[])) and status in ('planned', 'deferred')
        order by planned_at, send_id
        """,
        [send_ids],
    ).fetchall()
    return [
        SendRow(
            send_id=r[0],
            campaign=r[1],
            customer_id=r[2],
            occasion=r[3],
            variant=r[4],
            channel=r[5],
            address=r[6],
            context=json.loads(r[7]) if r[7] else {},
            attempt=int(r[8]) + 1,
        )
        for r in rows
    ]


def _render_all(
    rows: Sequence[SendRow], render: Callable[[SendRow], Any]
) -> tuple[list[Any], list[Outcome]]:
    messages: list[Any] = []
    failures: list[Outcome] = []
    for row in rows:
        try:
            message = render(row)
        except Exception as error:
            # The exception text may quote the row's context (names, addresses): type only.
            failures.append(
                Outcome(row.send_id, REJECTED, error=f"render failed: {type(error).__name__}")
            )
            continue
        if getattr(message, "send_id", None) != row.send_id:
            failures.append(
                Outcome(
                    row.send_id, REJECTED, error="render returned a message for another send_id"
                )
            )
            continue
        messages.append(message)
    return messages, failures


def _mark_in_flight(
    con: duckdb.DuckDBPyConnection, send_ids: list[str], run_id: str, now: dt.datetime
) -> None:
    marked = _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set
                status = 'in_flight',
                attempt_count = attempt_count + 1,
                run_id = ?,
                updated_at = ?,
                sent_at = ?,
                last_error = null
            where send_id in (select unnest(?::varchar[])) and status in ('planned', 'deferred')
            """,
            [run_id, now, now, send_ids],
        )
    )
    if marked != len(send_ids):
        raise DispatchError(
            f"{len(send_ids) - marked} of {len(send_ids)} rows changed status while being "
            "dispatched; is another dispatch of this campaign running?"
        )


_LEDGER_STATUS = {
    ACCEPTED: "accepted",
    REJECTED: "rejected",
    UNKNOWN: "unknown",
    NOT_SENT: "planned",
    SUPPRESSED: "suppressed",
}


def _record(
    con: duckdb.DuckDBPyConnection, outcomes: Sequence[Outcome], *, now: dt.datetime
) -> None:
    if not outcomes:
        return
    groups: dict[tuple[str, str | None, str | None], list[str]] = {}
    for outcome in outcomes:
        key = (_LEDGER_STATUS[outcome.status], outcome.provider_message_id, outcome.error)
        groups.setdefault(key, []).append(outcome.send_id)
    # A provider request usually has one answer for all its messages (SendGrid's batches): one
    # plain update per answer is several times cheaper in DuckDB than a join on value lists.
    if len(groups) <= 4:
        for (status, message_id, error), send_ids in groups.items():
            con.execute(
                f"""
                update {SCHEMA}.sends set
                    status = $status,
                    provider_message_id = coalesce($message_id, provider_message_id),
                    last_error = $error,
                    updated_at = $now,
                    -- A request the provider never processed is not an attempt.
                    attempt_count = case when $status = 'planned' and status = 'in_flight'
                        then greatest(attempt_count - 1, 0) else attempt_count end,
                    sent_at = case when $status = 'planned' then null else sent_at end
                where send_id in (select unnest($send_ids::varchar[]))
                  and status in ('in_flight', 'planned', 'deferred')
                """,
                {
                    "status": status,
                    "message_id": message_id,
                    "error": error,
                    "now": now,
                    "send_ids": send_ids,
                },
            )
    else:
        con.execute(
            f"""
            update {SCHEMA}.sends as s set
                status = v.status,
                provider_message_id = coalesce(v.provider_message_id, s.provider_message_id),
                last_error = v.error,
                updated_at = $now,
                attempt_count = case when v.status = 'planned' and s.status = 'in_flight'
                    then greatest(s.attempt_count - 1, 0) else s.attempt_count end,
                sent_at = case when v.status = 'planned' then null else s.sent_at end
            from (
                select unnest($send_ids::varchar[]) as send_id,
                       unnest($statuses::varchar[]) as status,
                       unnest($message_ids::varchar[]) as provider_message_id,
                       unnest($errors::varchar[]) as error
            ) v
            where s.send_id = v.send_id and s.status in ('in_flight', 'planned', 'deferred')
            """,
            {
                "now": now,
                "send_ids": [o.send_id for o in outcomes],
                "statuses": [_LEDGER_STATUS[o.status] for o in outcomes],
                "message_ids": [o.provider_message_id for o in outcomes],
                "errors": [o.error for o in outcomes],
            },
        )
    for outcome in outcomes:
        if outcome.status == SUPPRESSED and outcome.suppression_reason:
            row = con.execute(
                f"select channel, address, customer_id from {SCHEMA}.sends where send_id = ?",
                [outcome.send_id],
            ).fetchone()
            if row and (row[1] or row[2]):
                add_suppression(
                    con,
                    channel=row[0],
                    address=row[1],
                    customer_id=None if row[1] else row[2],
                    reason=outcome.suppression_reason,
                    source="provider_response",
                    now=now,
                )


def _tally(report: DispatchReport, outcomes: Sequence[Outcome], sample_size: int) -> None:
    for outcome in outcomes:
        if outcome.status == ACCEPTED:
            report.accepted += 1
            if len(report.sample_send_ids) < sample_size:
                report.sample_send_ids.append(outcome.send_id)
        elif outcome.status == REJECTED:
            report.rejected += 1
        elif outcome.status == UNKNOWN:
            report.unknown += 1
        elif outcome.status == SUPPRESSED:
            report.suppressed += 1
        elif outcome.status == NOT_SENT:
            report.not_sent += 1

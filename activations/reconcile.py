"""Resolve sends whose outcome is not known, without ever sending a send_id twice blindly.

A row is `unknown` when the provider may have queued it: a 5xx, a timeout, a reset mid-request,
or a run that died between committing `in_flight` and recording the answer. In that order:

1. `recover_in_flight`: at the start of a dispatch, rows still `in_flight` belong to a run that
   stopped (crash, kill -9, a Dagster retry); they become `unknown`. The `duckdb` pool allows
   one writer, so no live run can own them.
2. `reconcile_from_events`: a provider event carrying the send_id (SendGrid echoes custom_args
   in every event; Twilio status callbacks carry it in their URL) proves the provider took the
   message: `accepted`, or `rejected` when its only events are rejections (REJECTING_EVENTS).
3. `release_unknown`: a row with no event after the reconciliation window (default 24 h,
   SendGrid's own event retry horizon) goes back to `planned` for another attempt, while its
   attempt_count is below `max_attempts`; beyond that it stays `unknown` for a person to review.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from activations.ledger import SCHEMA, ensure_ledger, utc_naive

DEFAULT_RECONCILE_WINDOW = dt.timedelta(hours=24)
# Events that settle an unknown send as `rejected`: SendGrid's `dropped` (it refused the
# message) and Twilio's failed/undelivered statuses. Every other event (processed, delivered,
# deferred, bounce, open, sms_queued, sms_sent, ...) shows the provider accepted it.
REJECTING_EVENTS = ("dropped", "sms_failed", "sms_undelivered")


@dataclass(frozen=True)
class ReconcileCounts:
    accepted: int
    rejected: int

    @property
    def total(self) -> int:
        return self.accepted + self.rejected


@dataclass(frozen=True)
class ReleaseCounts:
    released: int
    held_for_review: int


def _count(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


def recover_in_flight(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str | None = None,
    channel: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Rows left `in_flight` by a run that stopped become `unknown`; returns how many."""
    ensure_ledger(con)
    return _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set
                status = 'unknown',
                last_error = 'in flight when its dispatch run stopped; awaiting provider events',
                updated_at = ?
            where status = 'in_flight'
              and (?::varchar is null or campaign = ?)
              and (?::varchar is null or channel = ?)
            """,
            [utc_naive(now), campaign, campaign, channel, channel],
        )
    )


def reconcile_from_events(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str | None = None,
    now: dt.datetime | None = None,
) -> ReconcileCounts:
    """Settle `unknown` rows from `provider_events` carrying their send_id."""
    ensure_ledger(con)
    stamp = utc_naive(now)
    rejecting = list(REJECTING_EVENTS)
    accepted = _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set
                status = 'accepted',
                last_error = null,
                updated_at = ?,
                provider_message_id = coalesce(provider_message_id, 'reconciled-from-events')
            where status = 'unknown'
              and (?::varchar is null or campaign = ?)
              and exists (
                  select 1 from {SCHEMA}.provider_events e
                  where e.send_id = sends.send_id
                    and e.event_type not in (select unnest(?::varchar[]))
              )
            """,
            [stamp, campaign, campaign, rejecting],
        )
    )
    rejected = _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set
                status = 'rejected',
                last_error = 'provider refused or failed the message (reconciled from events)',
                updated_at = ?
            where status = 'unknown'
              and (?::varchar is null or campaign = ?)
              and exists (
                  select 1 from {SCHEMA}.provider_events e where e.send_id = sends.send_id
              )
            """,
            [stamp, campaign, campaign],
        )
    )
    return ReconcileCounts(accepted=accepted, rejected=rejected)


def release_unknown(
    con: duckdb.DuckDBPyConnection,
    *,
    campaign: str,
    channel: str,
    older_than: dt.datetime,
    max_attempts: int,
    now: dt.datetime | None = None,
) -> ReleaseCounts:
    """`unknown` rows last touched at or before `older_than` with no event go back to
    `planned` while attempts remain; the rest are counted as held for review."""
    ensure_ledger(con)
    released = _count(
        con.execute(
            f"""
            update {SCHEMA}.sends set
                status = 'planned',
                last_error = 'released for another attempt: no provider event within the '
                    || 'reconciliation window',
                updated_at = ?
            where status = 'unknown' and campaign = ? and channel = ?
              and updated_at <= ? and attempt_count < ?
            """,
            [utc_naive(now), campaign, channel, utc_naive(older_than), max_attempts],
        )
    )
    held = _count(
        con.execute(
            f"""
            select count(*) from {SCHEMA}.sends
            where status = 'unknown' and campaign = ? and channel = ? and attempt_count >= ?
            """,
            [campaign, channel, max_attempts],
        )
    )
    return ReleaseCounts(released=released, held_for_review=held)

"""The delivery ledger in the warehouse (schema `activation`).

INTERFACE SKETCH: the signatures below are the contract between planning and delivery; the
bodies are being implemented. Tables (all in schema `activation`):

- `sends`: one row per send_id (UNIQUE): campaign, customer_id, occasion, variant, channel,
  is_holdout, address, context (JSON), status, attempt_count, provider_message_id, last_error,
  run_id, planned_at, updated_at, sent_at. Status: planned → in_flight → accepted | rejected |
  unknown; also holdout, suppressed, capped, deferred. in_flight is committed before the
  provider call, so a crash leaves evidence that a call may have happened.
- `runs`: one row per plan/dispatch run of a campaign occasion (run_id, campaign, occasion,
  planned_count, holdout_count, suppressed_count, status, started_at, finished_at, override).
- `suppressions`: channel, address, customer_id, reason (unsubscribe, bounce, spamreport,
  sms_stop, manual, erasure), source, created_at.
- `provider_events`: provider webhook events deduplicated on event_id (sg_event_id), with the
  send_id from custom_args, used to reconcile `unknown` sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from activations.messages import PlannedSend

SCHEMA = "activation"

TERMINAL_STATUSES = ("accepted", "rejected", "holdout", "suppressed", "capped")


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


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create the `activation` schema and its tables if they do not exist (idempotent)."""
    raise NotImplementedError


def record_plan(
    con: duckdb.DuckDBPyConnection, run_id: str, sends: Sequence[PlannedSend]
) -> PlanCounts:
    """Insert planned sends in one transaction; send_ids already in the ledger are left as they
    are (a rerun never re-plans a message). Holdout rows get status `holdout`."""
    raise NotImplementedError


def suppressed_addresses(con: duckdb.DuckDBPyConnection, channel: str) -> set[str]:
    """Addresses (lower-cased email or E.164 phone) that must not receive `channel` messages."""
    raise NotImplementedError


def add_suppression(
    con: duckdb.DuckDBPyConnection,
    *,
    channel: str,
    address: str | None,
    customer_id: str | None,
    reason: str,
    source: str,
) -> None:
    raise NotImplementedError


def recent_send_counts(
    con: duckdb.DuckDBPyConnection, channel: str, since: dt.datetime
) -> dict[str, int]:
    """customer_id → messages accepted or in flight (or unknown) on `channel` since `since`,
    for frequency caps at plan time and again at dispatch time."""
    raise NotImplementedError


def start_run(
    con: duckdb.DuckDBPyConnection, *, run_id: str, campaign: str, occasion: str
) -> None:
    raise NotImplementedError


def finish_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    status: str,
    planned_count: int,
    holdout_count: int,
    override: bool = False,
) -> None:
    raise NotImplementedError


def last_successful_run(con: duckdb.DuckDBPyConnection, campaign: str) -> RunRecord | None:
    """The latest run of `campaign` whose status is `succeeded` (the guardrail's baseline)."""
    raise NotImplementedError

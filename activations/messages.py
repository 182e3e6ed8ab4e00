"""The contract between planning/rendering and delivery.

Planning writes `PlannedSend` rows to the ledger; just before dispatch, the campaign's renderer
turns a ledger row back into one of the message types below, and a channel delivers it. Keeping
the rendered content out of the ledger keeps a nightly 1M-person newsletter from writing
gigabytes of HTML into the warehouse: the ledger stores the audience row (`context`) and the
render is deterministic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Channel = Literal["email", "sms", "webhook", "ad_list"]
CHANNELS: tuple[str, ...] = ("email", "sms", "webhook", "ad_list")


def make_send_id(campaign: str, customer_id: str, occasion: str, variant: str) -> str:
    """Deterministic, opaque id of one message: the same campaign, person, occasion and variant
    always give the same id, so a rerun or retry can recognise a message it already planned.

    `occasion` is the run date of a scheduled campaign (YYYY-MM-DD) or the trigger_id of an
    event-triggered one. The id carries no PII and is safe in provider tags.
    """
    key = "\x1f".join((campaign, customer_id, occasion, variant))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class PlannedSend:
    """One row of the plan, holdout rows included (they are recorded, never contacted)."""

    send_id: str
    campaign: str
    customer_id: str
    occasion: str
    variant: str
    channel: str
    is_holdout: bool
    # Email address or E.164 phone the message goes to; None for webhook and ad_list rows.
    address: str | None
    # The audience row's columns the templates need (JSON-serialisable), plus issued coupon codes.
    context: dict[str, Any] = field(default_factory=dict)
    planned_at: dt.datetime | None = None
    # The same context as JSON text straight from the warehouse (to_json of the audience row),
    # set instead of `context` for rows nobody renders at plan time: the ledger stores it as it
    # is, so a plan of millions of rows is not parsed and re-serialised in Python.
    context_json: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SendRow:
    """A ledger row handed to the renderer just before dispatch."""

    send_id: str
    campaign: str
    customer_id: str
    occasion: str
    variant: str
    channel: str
    address: str | None
    context: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class EmailMessage:
    send_id: str
    campaign: str
    variant: str
    to_email: str
    to_name: str | None
    subject: str
    html: str
    text: str
    # SendGrid substitution tags for this recipient (e.g. {"-first_name-": "Ana"}), replaced
    # by the provider in subject, html and text. A renderer that keeps per-person values here
    # instead of in `html` lets up to 1000 recipients share one Mail Send request; messages
    # whose html/text differ are sent in separate requests.
    substitutions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmsMessage:
    send_id: str
    campaign: str
    variant: str
    to_phone: str
    body: str


@dataclass(frozen=True)
class WebhookMessage:
    send_id: str
    campaign: str
    variant: str
    payload: dict[str, Any]


Message = EmailMessage | SmsMessage | WebhookMessage

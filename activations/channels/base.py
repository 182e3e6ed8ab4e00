"""What every channel shares: outcomes, the channel protocol, error redaction, dry-run.

A channel turns a batch of rendered messages into one `Outcome` per send_id:

- `accepted`: the provider took it (2xx);
- `rejected`: the provider refused this message for good (a 4xx about the message);
- `unknown`: the provider may or may not have queued it (5xx, timeout, reset mid-request);
  reconciled from provider events, never resent blindly;
- `not_sent`: the provider certainly did not process it (429 retries exhausted, unreachable,
  an account-level 401/403/404); the row goes back to `planned` for a later run;
- `suppressed`: the provider says the recipient opted out (Twilio 21610); the row is
  suppressed and `suppression_reason` is recorded for the address.

Errors are redacted before they reach the ledger or a log: provider error bodies can quote the
recipient (SendGrid's duplicate-address 400 names the address, Twilio's 21211 the number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from activations.messages import EmailMessage, SmsMessage

ACCEPTED = "accepted"
REJECTED = "rejected"
UNKNOWN = "unknown"
NOT_SENT = "not_sent"
SUPPRESSED = "suppressed"

_EMAIL = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
MAX_ERROR_CHARS = 300


def redact(text: str | None) -> str | None:
    """Strip email addresses and phone-like digit runs from provider error text."""
    if text is None:
        return None
    cleaned = _PHONE.sub("<phone>", _EMAIL.sub("<email>", str(text)))
    cleaned = " ".join(cleaned.split())
    return cleaned[:MAX_ERROR_CHARS]


def describe_http_error(destination: str, status: int | None, body: Any) -> str:
    """A short, redacted description of a provider error response."""
    detail = ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
        body = parsed
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], dict) else {"message": errors[0]}
            field_name = first.get("field")
            detail = (
                f"{field_name}: {first.get('message')}" if field_name else str(first.get("message"))
            )
        elif "code" in body or "message" in body:
            detail = f"{body.get('code', '')} {body.get('message', '')}".strip()
    elif isinstance(body, str):
        detail = body
    text = f"{destination} HTTP {status}" + (f": {detail}" if detail else "")
    return redact(text) or ""


@dataclass(frozen=True)
class Outcome:
    send_id: str
    status: str
    provider_message_id: str | None = None
    error: str | None = None
    suppression_reason: str | None = None


@dataclass
class SendResult:
    outcomes: list[Outcome]
    # Set when the destination should not be called again in this run (rate limit reset too
    # far away, unreachable, account-level refusal); unsent rows stay planned.
    halt: str | None = None
    # An account-level problem a person must fix (bad key, wrong host): the run fails loudly
    # after the outcomes are recorded.
    fatal: bool = False
    requests: int = 0


class Channel(Protocol):
    """A delivery channel. `batches` groups messages into provider requests (the ledger marks
    each batch in_flight and commits before `send`); `send` returns one outcome per message."""

    channel: str
    destination: str
    # Most messages one `send` call takes (one request for SendGrid and ad APIs).
    max_batch_size: int
    # True when the destination deduplicates on our send_id (an idempotency key), so an
    # `unknown` row may be retried at the next run without waiting for provider events.
    idempotent: bool

    def batches(self, messages: Sequence[Any]) -> Iterator[list[Any]]: ...

    def send(self, batch: Sequence[Any]) -> SendResult: ...


def address_of(message: Any) -> str | None:
    if isinstance(message, EmailMessage):
        return message.to_email.strip().lower()
    if isinstance(message, SmsMessage):
        return message.to_phone.strip()
    return None


def unique_address_batches(
    messages: Sequence[Any], max_size: int, key: Callable[[Any], Any] | None = None
) -> Iterator[list[Any]]:
    """Batches of at most `max_size` messages in which no address appears twice (SendGrid
    rejects a request that repeats an address). Messages with different `key` never share a
    batch; order within a key is kept."""
    groups: dict[Any, list[list[Any]]] = {}
    addresses: dict[Any, list[set[str]]] = {}
    order: list[Any] = []
    for message in messages:
        group_key = key(message) if key else None
        if group_key not in groups:
            groups[group_key] = []
            addresses[group_key] = []
            order.append(group_key)
        address = address_of(message)
        open_batches = groups[group_key]
        seen = addresses[group_key]
        # Only the newest batches can have room (older ones filled up or hold this address);
        # scanning from the end keeps this near-linear for real audiences.
        for index in range(len(open_batches) - 1, -1, -1):
            if len(open_batches[index]) < max_size and (
                address is None or address not in seen[index]
            ):
                open_batches[index].append(message)
                if address is not None:
                    seen[index].add(address)
                break
        else:
            open_batches.append([message])
            seen.append({address} if address is not None else set())
    for group_key in order:
        yield from groups[group_key]


@dataclass
class DryRunChannel:
    """Stands in for a live channel in dry-run: same batching, no client, no network.

    It has no HTTP client at all, so "zero calls" holds by construction; `sent` keeps the
    send_ids it would have sent for the preview.
    """

    channel: str
    destination: str
    max_batch_size: int = 1000
    idempotent: bool = False
    sent: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    def batches(self, messages: Sequence[Any]) -> Iterator[list[Any]]:
        return unique_address_batches(messages, self.max_batch_size)

    def send(self, batch: Sequence[Any]) -> SendResult:
        self.sent.extend(m.send_id for m in batch)
        self.batch_sizes.append(len(batch))
        return SendResult(
            outcomes=[Outcome(m.send_id, ACCEPTED, provider_message_id="dry-run") for m in batch]
        )

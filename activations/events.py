"""Provider events in: SendGrid's signed Event Webhook, Twilio inbound STOP messages and
Twilio message status callbacks.

Receiving and ingesting are split, because the warehouse has one writer: the receiver
(`EventWebhookReceiver`, or any web framework calling the `accept_*` functions) verifies a
request and drops its raw body into an `EventSpool` directory, answering 2xx at once;
`ingest_spool` later writes the spooled events into the ledger from whichever process holds
the DuckDB file (a Dagster asset, or dispatch itself via its `before_chunk` hook, so an
unsubscribe that arrives during a run applies to the next batch).

SendGrid requests are verified with the ECDSA P-256 public key over timestamp + raw body (what
sendgrid's `EventWebhook.verify_signature` does, but on bytes) and refused when the signature
or timestamp is missing or invalid, or the timestamp is more than 300 s away. Ingestion
deduplicates on `sg_event_id` (SendGrid retries deliveries for 24 h), turns unsubscribe,
group_unsubscribe, spamreport, bounce and address-level dropped events into suppressions,
and reconciles `unknown` sends whose send_id now has an event.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import duckdb
import pyarrow as pa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from activations.channels.base import redact
from activations.ledger import (
    SCHEMA,
    add_suppression,
    ensure_ledger,
    remove_suppression,
    utc_naive,
)
from activations.reconcile import reconcile_from_events

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_AGE_S = 300
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_EVENT_ID_CHARS = 100

# SendGrid event → suppression reason. `bounce` of type `blocked` is temporary and is skipped.
SUPPRESSING_EVENTS = {
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
    "spamreport": "spamreport",
    "bounce": "bounce",
    "dropped": "dropped",
}
# A `dropped` event suppresses the address only when SendGrid dropped it for the address
# itself; a drop for content ("Spam Content") is not the recipient's doing.
DROPPED_ADDRESS_REASONS = (
    "bounced address",
    "unsubscribed address",
    "spam reporting address",
    "invalid",
)
# Twilio's default opt-out and opt-in keywords.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
OPTED_OUT_CODE = 21610


class WebhookRejected(Exception):
    """A webhook request refused; `status` is the HTTP answer (400 malformed, 403 unsigned)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# verification


def load_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER as shown in its settings page, or PEM."""
    text = key.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
        else:
            loaded = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as error:
        raise ValueError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER or PEM public key"
        ) from error
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
        loaded.curve, ec.SECP256R1
    ):
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA P-256 public key")
    return loaded


def verify_sendgrid_signature(
    public_key: ec.EllipticCurvePublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    max_age_s: float = MAX_AGE_S,
) -> None:
    """Raise `WebhookRejected(403)` unless `signature` is a valid ECDSA signature of
    timestamp + body made within `max_age_s` of `now`."""
    if not signature:
        raise WebhookRejected(403, f"missing {SIGNATURE_HEADER}")
    if not timestamp:
        raise WebhookRejected(403, f"missing {TIMESTAMP_HEADER}")
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        raise WebhookRejected(403, f"{TIMESTAMP_HEADER} is not a Unix time") from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > max_age_s:
        raise WebhookRejected(403, f"timestamp is more than {int(max_age_s)} s from now (replay?)")
    try:
        decoded = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(403, f"{SIGNATURE_HEADER} is not base64") from None
    try:
        public_key.verify(decoded, timestamp.strip().encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise WebhookRejected(403, "signature does not match the body") from None


def parse_sendgrid_events(body: bytes) -> list[Any]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(400, "body is not valid UTF-8 JSON") from None
    if not isinstance(parsed, list):
        raise WebhookRejected(400, "body is not a JSON array of events")
    return parsed


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> None:
    """Twilio signs inbound webhooks with HMAC-SHA1 of the URL and sorted form parameters."""
    if not signature:
        raise WebhookRejected(403, f"missing {TWILIO_SIGNATURE_HEADER}")
    if not RequestValidator(auth_token).validate(url, dict(params), signature):
        raise WebhookRejected(403, "Twilio signature does not match")


# ---------------------------------------------------------------------------------------------
# spool


class EventSpool:
    """A directory of verified, not yet ingested webhook bodies. Files are written atomically
    and deleted only after their events are committed, so a crash re-ingests (and the event id
    dedupes) rather than loses."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def put(self, provider: str, body: bytes) -> Path:
        digest = hashlib.sha256(body).hexdigest()[:16]
        name = f"{time.time_ns():020d}-{digest}.{provider}"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(body)
        final = self.directory / name
        os.replace(temporary, final)
        return final

    def pending(self) -> list[Path]:
        return sorted(
            p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")
        )


def accept_sendgrid_events(
    body: bytes,
    headers: Mapping[str, str],
    *,
    public_key: ec.EllipticCurvePublicKey,
    spool: EventSpool,
    now: float | None = None,
) -> int:
    """Verify a SendGrid Event Webhook request and spool it; returns the number of events.
    Raises `WebhookRejected` (403 unsigned/stale, 400 malformed)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    verify_sendgrid_signature(
        public_key,
        body,
        lowered.get(SIGNATURE_HEADER.lower()),
        lowered.get(TIMESTAMP_HEADER.lower()),
        now=now,
    )
    events = parse_sendgrid_events(body)
    spool.put("sendgrid", body)
    return len(events)


def accept_twilio_inbound(
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth_token: str,
    url: str,
    spool: EventSpool,
) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8 form data") from None
    verify_twilio_signature(auth_token, url, params, lowered.get(TWILIO_SIGNATURE_HEADER.lower()))
    spool.put("twilio_inbound", body)


def accept_twilio_status(
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth_token: str,
    url: str,
    spool: EventSpool,
) -> None:
    """A Twilio message status callback. `url` is the full public URL Twilio called, query
    string (our `send_id`) included: the signature covers it."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8 form data") from None
    verify_twilio_signature(auth_token, url, params, lowered.get(TWILIO_SIGNATURE_HEADER.lower()))
    send_id = dict(parse_qsl(urlsplit(url).query)).get("send_id")
    if not send_id:
        raise WebhookRejected(400, "status callback URL carries no send_id")
    params["send_id"] = send_id
    spool.put("twilio_status", urlencode(params).encode())


# ---------------------------------------------------------------------------------------------
# ingestion


@dataclass
class EventIngestReport:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    invalid: int = 0
    suppressions_added: int = 0
    suppressions_lifted: int = 0
    reconciled_accepted: int = 0
    reconciled_rejected: int = 0

    def add(self, other: EventIngestReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def event_send_id(event: Mapping[str, Any]) -> str | None:
    """SendGrid flattens custom_args into each event; older payloads nest them."""
    value = event.get("send_id")
    if value is None:
        for key in ("custom_args", "unique_args"):
            nested = event.get(key)
            if isinstance(nested, Mapping) and nested.get("send_id") is not None:
                value = nested["send_id"]
                break
    return str(value) if value is not None else None


def _valid(event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    event_id, event_type = event.get("sg_event_id"), event.get("event")
    return (
        isinstance(event_id, str)
        and 0 < len(event_id) <= MAX_EVENT_ID_CHARS
        and isinstance(event_type, str)
        and bool(event_type)
    )


def _occurred_at(event: Mapping[str, Any]) -> dt.datetime | None:
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return dt.datetime.fromtimestamp(stamp, dt.UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _suppression_reason(event: Mapping[str, Any]) -> str | None:
    event_type = event["event"]
    if event_type == "bounce" and str(event.get("type", "bounce")).lower() == "blocked":
        return None
    if event_type == "dropped":
        reason = str(event.get("reason", "")).lower()
        if not any(reason.startswith(r) for r in DROPPED_ADDRESS_REASONS):
            return None
    return SUPPRESSING_EVENTS.get(event_type)


def _customer_of(con: duckdb.DuckDBPyConnection, send_id: str | None) -> str | None:
    if not send_id:
        return None
    row = con.execute(
        f"select customer_id from {SCHEMA}.sends where send_id = ?", [send_id]
    ).fetchone()
    return row[0] if row else None


def ingest_sendgrid_events(
    con: duckdb.DuckDBPyConnection,
    events: Iterable[Any],
    *,
    now: dt.datetime | None = None,
    source: str = "sendgrid_event_webhook",
) -> EventIngestReport:
    """Write events to `provider_events` (deduplicated on sg_event_id), apply suppressions for
    the new ones, and reconcile `unknown` sends. Events without an id or type are counted as
    invalid and skipped (SendGrid would retry a refused batch for 24 h)."""
    ensure_ledger(con)
    stamp = utc_naive(now)
    report = EventIngestReport()
    unique: dict[str, Mapping[str, Any]] = {}
    for event in events:
        report.received += 1
        if not _valid(event):
            report.invalid += 1
            continue
        unique.setdefault(event["sg_event_id"], event)
    report.duplicates = report.received - report.invalid - len(unique)
    if unique:
        table = pa.table(
            {
                "event_id": list(unique),
                "event_type": [str(e["event"]) for e in unique.values()],
                "send_id": [event_send_id(e) for e in unique.values()],
                "campaign": [
                    str(e["campaign"]) if e.get("campaign") is not None else None
                    for e in unique.values()
                ],
                "reason": [
                    redact(str(e.get("reason") or e.get("response") or "")) or None
                    for e in unique.values()
                ],
                "occurred_at": pa.array(
                    [_occurred_at(e) for e in unique.values()], pa.timestamp("us")
                ),
            }
        )
        con.register("_incoming_events", table)
        try:
            con.execute("begin")
            inserted = {
                row[0]
                for row in con.execute(
                    f"""
                    insert into {SCHEMA}.provider_events
                        (event_id, provider, event_type, send_id, campaign, reason,
                         occurred_at, received_at)
                    select event_id, 'sendgrid', event_type, send_id, campaign, reason,
                           occurred_at, ?
                    from _incoming_events
                    on conflict do nothing
                    returning event_id
                    """,
                    [stamp],
                ).fetchall()
            }
            report.new = len(inserted)
            report.duplicates += len(unique) - len(inserted)
            for event_id in sorted(
                inserted, key=lambda i: _occurred_at(unique[i]) or dt.datetime.min
            ):
                _apply_event(con, unique[event_id], source, stamp, report)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.unregister("_incoming_events")
    counts = reconcile_from_events(con, now=stamp)
    report.reconciled_accepted = counts.accepted
    report.reconciled_rejected = counts.rejected
    log.info(
        "sendgrid events: %d received, %d new, %d duplicate, %d invalid, %d suppressions, "
        "%d sends reconciled",
        report.received,
        report.new,
        report.duplicates,
        report.invalid,
        report.suppressions_added,
        counts.total,
    )
    return report


def _apply_event(
    con: duckdb.DuckDBPyConnection,
    event: Mapping[str, Any],
    source: str,
    stamp: dt.datetime,
    report: EventIngestReport,
) -> None:
    email = event.get("email")
    if not isinstance(email, str) or "@" not in email:
        return
    if event["event"] == "group_resubscribe":
        report.suppressions_lifted += remove_suppression(
            con, channel="email", address=email, reasons=("group_unsubscribe",)
        )
        return
    reason = _suppression_reason(event)
    if reason is None:
        return
    if add_suppression(
        con,
        channel="email",
        address=email,
        customer_id=_customer_of(con, event_send_id(event)),
        reason=reason,
        source=source,
        now=stamp,
    ):
        report.suppressions_added += 1


def ingest_twilio_inbound(
    con: duckdb.DuckDBPyConnection,
    params: Mapping[str, str],
    *,
    now: dt.datetime | None = None,
    source: str = "twilio_inbound",
) -> EventIngestReport:
    """An inbound SMS: STOP-family keywords (or Twilio's OptOutType=STOP) suppress the sender
    for SMS; START/YES/UNSTOP lift it. Deduplicated on MessageSid."""
    ensure_ledger(con)
    stamp = utc_naive(now)
    report = EventIngestReport(received=1)
    sender = params.get("From")
    message_sid = params.get("MessageSid") or params.get("SmsSid")
    keyword = (params.get("Body") or "").strip().upper()
    opt = (params.get("OptOutType") or "").strip().upper()
    is_stop = opt == "STOP" or (not opt and keyword in STOP_WORDS)
    is_start = opt == "START" or (not opt and keyword in START_WORDS)
    if not sender or not message_sid or not (is_stop or is_start):
        report.invalid = 0 if sender and message_sid else 1
        return report
    inserted = con.execute(
        f"""
        insert into {SCHEMA}.provider_events
            (event_id, provider, event_type, send_id, campaign, reason, occurred_at, received_at)
        values (?, 'twilio', ?, null, null, null, ?, ?)
        on conflict do nothing
        returning event_id
        """,
        [message_sid, "inbound_stop" if is_stop else "inbound_start", stamp, stamp],
    ).fetchall()
    if not inserted:
        report.duplicates = 1
        return report
    report.new = 1
    if is_stop:
        if add_suppression(
            con,
            channel="sms",
            address=sender,
            customer_id=None,
            reason="sms_stop",
            source=source,
            now=stamp,
        ):
            report.suppressions_added = 1
    else:
        report.suppressions_lifted = remove_suppression(
            con, channel="sms", address=sender, reasons=("sms_stop",)
        )
    return report


def ingest_twilio_status(
    con: duckdb.DuckDBPyConnection,
    params: Mapping[str, str],
    *,
    now: dt.datetime | None = None,
    source: str = "twilio_status_callback",
) -> EventIngestReport:
    """A status callback proves Twilio had the message: recorded as event `sms_<status>` with
    its send_id, so an `unknown` SMS is reconciled (failed/undelivered → rejected) instead of
    resent. Error 21610 in a callback also suppresses the number."""
    ensure_ledger(con)
    stamp = utc_naive(now)
    report = EventIngestReport(received=1)
    message_sid, status, send_id = (
        params.get("MessageSid"),
        params.get("MessageStatus"),
        params.get("send_id"),
    )
    if not message_sid or not status or not send_id:
        report.invalid = 1
        return report
    inserted = con.execute(
        f"""
        insert into {SCHEMA}.provider_events
            (event_id, provider, event_type, send_id, campaign, reason, occurred_at, received_at)
        values (?, 'twilio', ?, ?, null, ?, ?, ?)
        on conflict do nothing
        returning event_id
        """,
        [
            f"{message_sid}:{status}",
            f"sms_{status.lower()}",
            send_id,
            f"error {params['ErrorCode']}" if params.get("ErrorCode") else None,
            stamp,
            stamp,
        ],
    ).fetchall()
    if not inserted:
        report.duplicates = 1
        return report
    report.new = 1
    opted_out = params.get("ErrorCode") == str(OPTED_OUT_CODE) and bool(params.get("To"))
    if opted_out and add_suppression(
        con,
        channel="sms",
        address=params["To"],
        customer_id=_customer_of(con, send_id),
        reason="sms_stop",
        source=source,
        now=stamp,
    ):
        report.suppressions_added = 1
    counts = reconcile_from_events(con, now=stamp)
    report.reconciled_accepted, report.reconciled_rejected = counts.accepted, counts.rejected
    return report


def ingest_spool(
    con: duckdb.DuckDBPyConnection, spool: EventSpool, *, now: dt.datetime | None = None
) -> EventIngestReport:
    """Ingest every spooled body, oldest first, deleting each file after its commit."""
    total = EventIngestReport()
    for path in spool.pending():
        body = path.read_bytes()
        provider = path.suffix.lstrip(".")
        if provider == "sendgrid":
            total.add(ingest_sendgrid_events(con, parse_sendgrid_events(body), now=now))
        elif provider == "twilio_inbound":
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            total.add(ingest_twilio_inbound(con, params, now=now))
        elif provider == "twilio_status":
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            total.add(ingest_twilio_status(con, params, now=now))
        else:
            log.warning("event spool: skipping %s, unknown provider %r", path.name, provider)
            continue
        path.unlink()
    return total


# ---------------------------------------------------------------------------------------------
# a small receiver


class EventWebhookReceiver:
    """A minimal HTTP receiver: `POST /sendgrid/events`, `/twilio/inbound` and
    `/twilio/status?send_id=...`, verified and spooled, answered at once (R5: 2xx fast,
    process asynchronously).

    Put it behind the TLS-terminating proxy that faces the providers; `twilio_url` and
    `twilio_status_url` are the public URLs Twilio posts to (its signature covers them; the
    latter is TWILIO_STATUS_CALLBACK_URL)."""

    def __init__(
        self,
        *,
        spool: EventSpool,
        sendgrid_public_key: str | None = None,
        twilio_auth_token: str | None = None,
        twilio_url: str | None = None,
        twilio_status_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Any = time.time,
    ) -> None:
        self.spool = spool
        self._public_key = load_public_key(sendgrid_public_key) if sendgrid_public_key else None
        self._twilio_token = twilio_auth_token
        self._twilio_url = twilio_url
        self._twilio_status_url = twilio_status_url
        self._clock = clock
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                # The default handler logs request lines only; keep them out of stderr.
                log.debug("event receiver: %s", format % args)

            def _answer(self, status: int, text: str) -> None:
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, "body too large")
                    return
                body = self.rfile.read(length)
                status, text = receiver.handle(self.path, body, dict(self.headers.items()))
                self._answer(status, text)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        try:
            if path == "/sendgrid/events" and self._public_key is not None:
                count = accept_sendgrid_events(
                    body, headers, public_key=self._public_key, spool=self.spool, now=self._clock()
                )
                return 200, f"{count} events accepted"
            if path == "/twilio/inbound" and self._twilio_token and self._twilio_url:
                accept_twilio_inbound(
                    body,
                    headers,
                    auth_token=self._twilio_token,
                    url=self._twilio_url,
                    spool=self.spool,
                )
                return 200, ""
            if (
                path.startswith("/twilio/status?")
                and self._twilio_token
                and self._twilio_status_url
            ):
                accept_twilio_status(
                    body,
                    headers,
                    auth_token=self._twilio_token,
                    url=f"{self._twilio_status_url}?{urlsplit(path).query}",
                    spool=self.spool,
                )
                return 200, ""
        except WebhookRejected as rejected:
            log.warning(
                "event receiver: %s refused (%d): %s", path, rejected.status, rejected.reason
            )
            return rejected.status, rejected.reason
        return 404, "not found"

    def start(self) -> EventWebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

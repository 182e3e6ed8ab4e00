"""Email through SendGrid v3 Mail Send with the official `sendgrid` client.

One request carries up to 1000 personalizations, each one recipient, with no address twice
(SendGrid answers 400 to a repeated address). Messages whose html and text are identical share
a request; per-person values travel as `substitutions`, the subject per personalization.

Tags are opaque: each personalization's `custom_args` holds only the `send_id` (echoed in every
event, so an `unknown` outcome can be reconciled), the message-level `custom_args` the campaign
and variant, `categories` the campaign name. No `bypass_*` mail setting is ever sent, and
`sandbox_mode` (SendGrid validates but never delivers) is available for staging.

A 400 or 413 about one request means SendGrid processed none of it, so the batch is split in
halves and retried until the offending message is alone and rejected; the others go out.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
from collections.abc import Iterator, Sequence
from typing import Any

from python_http_client import exceptions as http_exceptions
from sendgrid import SendGridAPIClient

from activations.channels.base import (
    ACCEPTED,
    NOT_SENT,
    REJECTED,
    UNKNOWN,
    Outcome,
    SendResult,
    describe_http_error,
    unique_address_batches,
)
from activations.messages import EmailMessage
from activations.ratelimit import Attempt, Clock, Destination, RetryPolicy, Sleep, header_value

MAX_PERSONALIZATIONS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
# SendGrid's limit is 20 MB including headers; keep a margin for them.
MAX_REQUEST_BYTES = 19_000_000

# python_http_client logs the whole request body (addresses, names) at DEBUG.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)

_MESSAGE_ERRORS = {400, 413, 422}
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)\b")
_ACCOUNT_ERRORS = {401, 403, 404, 405, 415}


def _is_timeout(error: BaseException) -> bool:
    reason = getattr(error, "reason", None)
    return isinstance(error, TimeoutError | socket.timeout) or isinstance(
        reason, TimeoutError | socket.timeout
    )


def _estimated_bytes(message: EmailMessage) -> int:
    """An upper bound of one personalization's JSON size: the client escapes every non-ASCII
    character as \\uXXXX (6 bytes), plus the fixed keys and the send_id."""
    chars = len(message.to_email) + len(message.to_name or "") + len(message.subject)
    chars += sum(len(k) + len(v) for k, v in message.substitutions.items())
    return 6 * chars + 8 * len(message.substitutions) + 160


def classify_exception(error: BaseException) -> Attempt:
    """Transport failures: refused/unresolvable means SendGrid never saw the request; a timeout
    or a reset after the request went out may have been queued."""
    if _is_timeout(error):
        return Attempt("unknown", error="timeout waiting for the provider")
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return Attempt("not_received", error=f"connection failed: {type(reason).__name__}")
    if isinstance(
        error, ConnectionError | http.client.HTTPException | urllib.error.URLError | OSError
    ):
        return Attempt("unknown", error=f"connection lost: {type(reason).__name__}")
    raise error


class SendGridEmailChannel:
    channel = "email"
    destination = "sendgrid"
    idempotent = False

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        host: str = "https://api.sendgrid.com",
        sandbox_mode: bool = False,
        asm_group_id: int | None = None,
        timeout_s: float = 30.0,
        max_batch_size: int = MAX_PERSONALIZATIONS,
        max_requests_per_s: float | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not 1 <= max_batch_size <= MAX_PERSONALIZATIONS:
            raise ValueError(f"max_batch_size must be in 1..{MAX_PERSONALIZATIONS}")
        # The client would silently fall back to os.environ for an empty key.
        if not api_key:
            raise ValueError("the SendGrid channel needs an API key (SENDGRID_API_KEY)")
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        # The client builds a new request object per call from this attribute.
        self._client.client.timeout = timeout_s
        self.from_email = from_email
        self.from_name = from_name
        self.sandbox_mode = sandbox_mode
        self.asm_group_id = asm_group_id
        self.max_batch_size = max_batch_size
        self.limiter = Destination(
            self.destination,
            max_requests_per_s=max_requests_per_s,
            policy=retry_policy,
            clock=clock,
            sleep=sleep,
        )

    def requests(self, messages: Sequence[EmailMessage]) -> Iterator[list[EmailMessage]]:
        """Mail Send requests: same content, at most `max_batch_size` unique addresses, under
        the size limit."""
        for batch in unique_address_batches(
            messages, self.max_batch_size, key=lambda m: (m.campaign, m.variant, m.html, m.text)
        ):
            yield from self._split_by_size(batch)

    def batches(self, messages: Sequence[EmailMessage]) -> Iterator[list[EmailMessage]]:
        """Whole requests packed up to `max_batch_size` messages: the ledger commits a batch
        in_flight once, so per-person content (one request per message) does not cost two
        commits per email. An interrupted batch is reconciled from SendGrid's events."""
        pending: list[EmailMessage] = []
        for request in self.requests(messages):
            if pending and len(pending) + len(request) > self.max_batch_size:
                yield pending
                pending = []
            pending.extend(request)
        if pending:
            yield pending

    def _split_by_size(self, batch: list[EmailMessage]) -> Iterator[list[EmailMessage]]:
        shared = len(batch[0].html.encode()) + len(batch[0].text.encode()) + 2_000
        current: list[EmailMessage] = []
        size = shared
        for message in batch:
            item = _estimated_bytes(message)
            if current and size + item > MAX_REQUEST_BYTES:
                yield current
                current, size = [], shared
            current.append(message)
            size += item
        if current:
            yield current

    def _personalization(self, message: EmailMessage) -> dict[str, Any]:
        recipient: dict[str, str] = {"email": message.to_email}
        if message.to_name:
            recipient["name"] = message.to_name
        personalization: dict[str, Any] = {
            "to": [recipient],
            "subject": message.subject,
            "custom_args": {"send_id": message.send_id},
        }
        if message.substitutions:
            personalization["substitutions"] = dict(message.substitutions)
        return personalization

    def request_body(self, batch: Sequence[EmailMessage]) -> dict[str, Any]:
        first = batch[0]
        sender: dict[str, str] = {"email": self.from_email}
        if self.from_name:
            sender["name"] = self.from_name
        content = []
        if first.text:
            content.append({"type": "text/plain", "value": first.text})
        content.append({"type": "text/html", "value": first.html})
        body: dict[str, Any] = {
            "personalizations": [self._personalization(m) for m in batch],
            "from": sender,
            "subject": first.subject,
            "content": content,
            "categories": [first.campaign[:MAX_CATEGORY_CHARS]],
            "custom_args": {"campaign": first.campaign, "variant": first.variant},
        }
        if self.asm_group_id is not None:
            body["asm"] = {"group_id": self.asm_group_id}
        if self.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        self._check_limits(body)
        return body

    @staticmethod
    def _check_limits(body: dict[str, Any]) -> None:
        personalizations = body["personalizations"]
        if not 1 <= len(personalizations) <= MAX_PERSONALIZATIONS:
            raise ValueError(
                f"a Mail Send request needs 1..{MAX_PERSONALIZATIONS} personalizations"
            )
        addresses = [p["to"][0]["email"].lower() for p in personalizations]
        if len(set(addresses)) != len(addresses):
            raise ValueError("a Mail Send request repeats an address (send_ids withheld)")
        # Only the send_id varies per personalization; the message-level args are shared.
        longest = max(len(p["custom_args"]["send_id"]) for p in personalizations)
        if len(json.dumps(body["custom_args"]).encode()) + longest + 20 > MAX_CUSTOM_ARGS_BYTES:
            raise ValueError("custom_args of a Mail Send request exceed 10,000 bytes")
        if len(body["categories"]) > MAX_CATEGORIES:
            raise ValueError(f"at most {MAX_CATEGORIES} categories per request")

    def _post(self, body: dict[str, Any]) -> Attempt:
        try:
            response = self._client.send(body)
        except http_exceptions.HTTPError as error:
            status = int(error.status_code)
            headers = dict(error.headers.items()) if error.headers else {}
            if status == 429:
                return Attempt("rate_limited", status=status, headers=headers)
            described = describe_http_error(self.destination, status, error.body)
            if status in _MESSAGE_ERRORS:
                return Attempt(
                    "rejected", status=status, headers=headers, body=error.body, error=described
                )
            if status in _ACCOUNT_ERRORS:
                return Attempt("account_error", status=status, headers=headers, error=described)
            if status >= 500:
                return Attempt("unknown", status=status, headers=headers, error=described)
            return Attempt("rejected", status=status, headers=headers, error=described)
        except Exception as error:
            return classify_exception(error)
        headers = dict(response.headers.items()) if response.headers else {}
        if 200 <= response.status_code < 300:
            return Attempt("ok", status=response.status_code, headers=headers)
        # python_http_client raises for >= 400; other codes (3xx) are not a documented answer.
        return Attempt(
            "unknown",
            status=response.status_code,
            headers=headers,
            error=f"{self.destination} HTTP {response.status_code}",
        )

    def send(self, batch: Sequence[EmailMessage]) -> SendResult:
        result = SendResult(outcomes=[])
        for request in self.requests(batch):
            self._send(request, result)
        return result

    def _send(self, batch: list[EmailMessage], result: SendResult) -> None:
        if result.halt:
            result.outcomes.extend(Outcome(m.send_id, NOT_SENT, error=result.halt) for m in batch)
            return
        if not batch:
            return
        body = self.request_body(batch)
        call = self.limiter.call(lambda: self._post(body))
        result.requests += 1 + call.retries
        attempt = call.attempt
        if attempt.kind == "ok":
            message_id = header_value(attempt.headers, "X-Message-Id")
            result.outcomes.extend(
                Outcome(m.send_id, ACCEPTED, provider_message_id=message_id) for m in batch
            )
        elif call.gave_up:
            result.halt = f"{self.destination}: {call.gave_up}"
            result.outcomes.extend(Outcome(m.send_id, NOT_SENT, error=result.halt) for m in batch)
        elif attempt.kind == "rejected":
            self._handle_rejection(batch, attempt, result)
        elif attempt.kind == "account_error":
            # 403 is also SendGrid's "too many bad requests, temporary block": stop for this run
            # but do not fail it; 401/404 need a person (key, host).
            result.halt = attempt.error or f"{self.destination} refused the account"
            result.fatal = attempt.status != 403
            result.outcomes.extend(Outcome(m.send_id, NOT_SENT, error=attempt.error) for m in batch)
        else:
            result.outcomes.extend(Outcome(m.send_id, UNKNOWN, error=attempt.error) for m in batch)

    def _handle_rejection(
        self, batch: list[EmailMessage], attempt: Attempt, result: SendResult
    ) -> None:
        """A 4xx means SendGrid processed nothing of the request. When its errors point at
        personalizations, reject exactly those and resend the rest; a 413 (or an error without
        a field) is split in halves; an error about shared fields (from, content) is not the
        recipients' fault, so nothing is rejected and the run stops for a person to fix it."""
        indices = personalization_errors(attempt.body)
        bad = {i for i in indices or () if i < len(batch)}
        if bad:
            for index in sorted(bad):
                result.outcomes.append(Outcome(batch[index].send_id, REJECTED, error=attempt.error))
            self._send([m for i, m in enumerate(batch) if i not in bad], result)
        elif indices is None and (attempt.status == 413 or not any(error_fields(attempt.body))):
            if len(batch) == 1:
                result.outcomes.append(Outcome(batch[0].send_id, REJECTED, error=attempt.error))
            else:
                middle = len(batch) // 2
                self._send(batch[:middle], result)
                self._send(batch[middle:], result)
        else:
            result.halt = attempt.error or f"{self.destination} rejected the request"
            result.fatal = True
            result.outcomes.extend(Outcome(m.send_id, NOT_SENT, error=attempt.error) for m in batch)


def error_fields(body: Any) -> list[str | None]:
    """The `field` of each error in a SendGrid error body ([] when there is none)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return []
    return [e.get("field") if isinstance(e, dict) else None for e in errors]


def personalization_errors(body: Any) -> set[int] | None:
    """Indices of the personalizations a 400 blames, or None unless every error names one
    (`personalizations.3.to.0.email`)."""
    fields = error_fields(body)
    if not fields:
        return None
    indices: set[int] = set()
    for name in fields:
        match = _PERSONALIZATION_FIELD.match(name or "")
        if not match:
            return set() if any(f for f in fields) else None
        indices.add(int(match.group(1)))
    return indices

"""A generic signed JSON webhook (push, WeChat, any in-house endpoint), one POST per message.

Body: `{"id": <send_id>, "campaign": ..., "variant": ..., "data": <the rendered payload>}`.
Headers: `X-Timestamp` (Unix seconds), `X-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<raw body>" with the shared secret>`, and `Idempotency-Key: <send_id>`.

A receiver verifies the HMAC with a constant-time compare, refuses timestamps more than 300 s
old, and deduplicates on the idempotency key; that makes a resend of an `unknown` message
harmless, so this channel is `idempotent` and unknown rows are retried at the next run
instead of waiting for events that a generic endpoint never sends. A 409 (key already seen)
counts as accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

from activations.channels.base import (
    ACCEPTED,
    NOT_SENT,
    REJECTED,
    UNKNOWN,
    Outcome,
    SendResult,
)
from activations.messages import WebhookMessage
from activations.ratelimit import Attempt, Clock, Destination, RetryPolicy, Sleep

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def classify_exception(error: BaseException) -> Attempt:
    reason = getattr(error, "reason", error)
    if isinstance(error, TimeoutError | socket.timeout) or isinstance(
        reason, TimeoutError | socket.timeout
    ):
        return Attempt("unknown", error="timeout waiting for the endpoint")
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return Attempt("not_received", error=f"connection failed: {type(reason).__name__}")
    if isinstance(error, OSError | http.client.HTTPException):
        return Attempt("unknown", error=f"connection lost: {type(reason).__name__}")
    raise error


class WebhookChannel:
    channel = "webhook"
    idempotent = True

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        destination: str = "webhook",
        timeout_s: float = 10.0,
        max_batch_size: int = 20,
        max_requests_per_s: float | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL of destination {destination!r} must be http(s)")
        if not secret:
            raise ValueError(f"webhook destination {destination!r} needs a signing secret")
        self.url = url
        self._secret = secret
        self.destination = destination
        self.timeout_s = timeout_s
        self.max_batch_size = max_batch_size
        self._clock = clock
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.limiter = Destination(
            destination,
            max_requests_per_s=max_requests_per_s,
            policy=retry_policy,
            clock=clock,
            sleep=sleep,
        )

    def batches(self, messages: Sequence[WebhookMessage]) -> Iterator[list[WebhookMessage]]:
        for start in range(0, len(messages), self.max_batch_size):
            yield list(messages[start : start + self.max_batch_size])

    def _post(self, message: WebhookMessage) -> Attempt:
        body = json.dumps(
            {
                "id": message.send_id,
                "campaign": message.campaign,
                "variant": message.variant,
                "data": message.payload,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode("utf-8")
        timestamp = str(int(self._clock()))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "omnicdp-activations",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
                IDEMPOTENCY_HEADER: message.send_id,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return Attempt("ok", status=response.status, headers=dict(response.headers.items()))
        except urllib.error.HTTPError as error:
            headers = dict(error.headers.items()) if error.headers else {}
            status = error.code
            if status == 409:
                return Attempt("ok", status=status, headers=headers)
            if status == 429:
                return Attempt("rate_limited", status=status, headers=headers)
            # A third-party error body may echo the payload (names, ids); keep the status only.
            described = f"{self.destination} HTTP {status}"
            if status in (401, 403, 404, 405):
                return Attempt("account_error", status=status, error=described)
            if status >= 500:
                return Attempt("unknown", status=status, error=described)
            return Attempt("rejected", status=status, error=described)
        except Exception as error:
            return classify_exception(error)

    def send(self, batch: Sequence[WebhookMessage]) -> SendResult:
        result = SendResult(outcomes=[])
        for message in batch:
            if result.halt:
                result.outcomes.append(Outcome(message.send_id, NOT_SENT, error=result.halt))
                continue
            call = self.limiter.call(lambda m=message: self._post(m))
            result.requests += 1 + call.retries
            attempt = call.attempt
            if attempt.kind == "ok":
                outcome = Outcome(message.send_id, ACCEPTED)
            elif call.gave_up:
                result.halt = f"{self.destination}: {call.gave_up}"
                outcome = Outcome(message.send_id, NOT_SENT, error=result.halt)
            elif attempt.kind == "account_error":
                result.halt = attempt.error
                result.fatal = True
                outcome = Outcome(message.send_id, NOT_SENT, error=attempt.error)
            elif attempt.kind == "rejected":
                outcome = Outcome(message.send_id, REJECTED, error=attempt.error)
            else:
                outcome = Outcome(message.send_id, UNKNOWN, error=attempt.error)
            result.outcomes.append(outcome)
        return result

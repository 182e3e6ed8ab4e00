"""SMS through the official `twilio` client, one Messages API request per message.

The client's base URL is redirected through a custom `http_client` (Twilio's documented
extension point for transport changes): every `https://*.twilio.com` URL the client builds is
rewritten onto `TWILIO_API_BASE_URL`, so tests and staging talk to a local fake through the
real client. The same http client keeps the last response's headers, which the client's
exceptions drop, to read `Retry-After` on a 429.

Outcomes: 201 → accepted (the message SID is kept); 21610 (recipient replied STOP) →
suppressed, and the number gets an `sms_stop` suppression; account-level codes (bad
credentials, unusable sender) stop the run without touching the messages; other 4xx →
rejected; 429/20429 ("never processed, always safe to retry") → retried after the reset;
5xx, timeouts and resets → unknown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from activations.channels.base import (
    ACCEPTED,
    NOT_SENT,
    REJECTED,
    SUPPRESSED,
    UNKNOWN,
    Outcome,
    SendResult,
    redact,
    unique_address_batches,
)
from activations.messages import SmsMessage
from activations.ratelimit import Attempt, Clock, Destination, RetryPolicy, Sleep

OPTED_OUT = 21610
# Codes about the account or the sender, not the recipient: every message would fail alike.
ACCOUNT_CODES = frozenset({20003, 20404, 21212, 21603, 21606, 21659})


class RedirectingHttpClient(TwilioHttpClient):
    """TwilioHttpClient that sends `*.twilio.com` requests to `base_url` instead."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"TWILIO_API_BASE_URL must be an http(s) URL, got {base_url!r}")
        self._base = parts
        self._local = threading.local()

    @property
    def last_headers(self) -> dict[str, str]:
        return getattr(self._local, "headers", {})

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.netloc == "twilio.com" or parts.netloc.endswith(".twilio.com"):
            url = urlunsplit(
                (
                    self._base.scheme,
                    self._base.netloc,
                    self._base.path + parts.path,
                    parts.query,
                    parts.fragment,
                )
            )
        self._local.headers = {}
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = dict(response.headers or {})
        return response


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (requests → urllib3 → socket)."""
    stack: list[Any] = [error]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(current.args)


def classify_exception(error: BaseException) -> Attempt:
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return Attempt("not_received", error="connect timeout")
    if isinstance(error, requests.exceptions.Timeout):
        return Attempt("unknown", error="timeout waiting for the provider")
    if isinstance(error, requests.exceptions.ConnectionError):
        # A refused connection never carried the request; a reset or abort may have.
        if any(
            isinstance(cause, ConnectionRefusedError | NewConnectionError)
            for cause in _causes(error)
        ):
            return Attempt("not_received", error="connection refused")
        return Attempt("unknown", error="connection lost")
    raise error


class TwilioSmsChannel:
    channel = "sms"
    destination = "twilio"
    idempotent = False

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str = "https://api.twilio.com",
        status_callback_url: str | None = None,
        timeout_s: float = 30.0,
        max_batch_size: int = 20,
        max_messages_per_s: float | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        # The client would silently fall back to os.environ for empty credentials.
        if not account_sid or not auth_token:
            raise ValueError("the SMS channel needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not from_number and not messaging_service_sid:
            raise ValueError(
                "an SMS channel needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
            )
        self._http = RedirectingHttpClient(api_base_url, timeout=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_url = status_callback_url
        self.max_batch_size = max_batch_size
        self.limiter = Destination(
            self.destination,
            max_requests_per_s=max_messages_per_s,
            policy=retry_policy,
            clock=clock,
            sleep=sleep,
        )

    def batches(self, messages: Sequence[SmsMessage]) -> Iterator[list[SmsMessage]]:
        return unique_address_batches(messages, self.max_batch_size)

    def _callback(self, send_id: str) -> str | None:
        if not self.status_callback_url:
            return None
        separator = "&" if "?" in self.status_callback_url else "?"
        return f"{self.status_callback_url}{separator}{urlencode({'send_id': send_id})}"

    def _create(self, message: SmsMessage) -> Attempt:
        kwargs: dict[str, Any] = {"to": message.to_phone, "body": message.body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        callback = self._callback(message.send_id)
        if callback:
            kwargs["status_callback"] = callback
        try:
            created = self._client.messages.create(**kwargs)
        except TwilioRestException as error:
            headers = self._http.last_headers
            code = int(error.code) if error.code is not None else None
            described = redact(f"{self.destination} HTTP {error.status} code {code}")
            if error.status == 429 or code == 20429:
                return Attempt("rate_limited", status=error.status, headers=headers)
            if code == OPTED_OUT:
                return Attempt("opted_out", status=error.status, error=described)
            if code in ACCOUNT_CODES or error.status in (401, 403):
                return Attempt("account_error", status=error.status, error=described)
            if error.status >= 500:
                return Attempt("unknown", status=error.status, error=described)
            return Attempt("rejected", status=error.status, error=described)
        except Exception as error:
            return classify_exception(error)
        return Attempt("ok", status=201, body=created.sid)

    def send(self, batch: Sequence[SmsMessage]) -> SendResult:
        result = SendResult(outcomes=[])
        for message in batch:
            if result.halt:
                result.outcomes.append(Outcome(message.send_id, NOT_SENT, error=result.halt))
                continue
            call = self.limiter.call(lambda m=message: self._create(m))
            result.requests += 1 + call.retries
            attempt = call.attempt
            if attempt.kind == "ok":
                outcome = Outcome(message.send_id, ACCEPTED, provider_message_id=attempt.body)
            elif call.gave_up:
                result.halt = f"{self.destination}: {call.gave_up}"
                outcome = Outcome(message.send_id, NOT_SENT, error=result.halt)
            elif attempt.kind == "opted_out":
                outcome = Outcome(
                    message.send_id, SUPPRESSED, error=attempt.error, suppression_reason="sms_stop"
                )
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

"""A fake SendGrid v3 Mail Send (`POST /v3/mail/send`) with SendGrid's documented validation:
1..1000 personalizations, at most 1000 recipients, no address twice across personalizations
(400 naming the field, as SendGrid does), custom_args at most 10,000 bytes, at most 10
categories of 255 characters, 413 above 20 MB, bearer-key auth, 202 + X-Message-Id,
X-RateLimit-* headers on every answer, sandbox_mode answered 200 and never delivered.

Each accepted personalization is recorded with its send_id (from custom_args) and address,
so tests can compare what the fake received with the ledger, and `events()` produces the
Event Webhook payloads SendGrid would post for them (custom_args flattened into each event).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer, RecordedRequest, Response

MAX_BODY_BYTES = 20 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Delivered:
    send_id: str | None
    email: str
    campaign: str | None
    message_id: str
    request_index: int
    custom_args: dict[str, str]
    categories: tuple[str, ...]


def _error(message: str, field: str | None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


class FakeSendGrid(FakeServer):
    name = "fake SendGrid"

    def __init__(self, *, api_key: str = "SG.fake-key", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.delivered: list[Delivered] = []
        self.sandbox_requests = 0
        self._delivered_lock = threading.Lock()

    # -- what tests read ----------------------------------------------------------------------

    def received_send_ids(self) -> list[str]:
        """Every send_id SendGrid accepted, once per acceptance (duplicates show twice)."""
        with self._delivered_lock:
            return [d.send_id for d in self.delivered if d.send_id is not None]

    def duplicates(self) -> dict[str, int]:
        return {k: v for k, v in Counter(self.received_send_ids()).items() if v > 1}

    def mail_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v3/mail/send"]

    def events(self, *types: str) -> list[dict[str, Any]]:
        """Event Webhook payloads for every accepted personalization (default: processed and
        delivered), with deterministic sg_event_ids so a replay deduplicates."""
        kinds = types or ("processed", "delivered")
        with self._delivered_lock:
            delivered = list(self.delivered)
        events = []
        for number, item in enumerate(delivered):
            for kind in kinds:
                seed = f"{item.message_id}:{item.send_id}:{item.email}:{kind}:{number}"
                events.append(
                    {
                        "email": item.email,
                        "timestamp": int(self.clock()),
                        "event": kind,
                        "sg_event_id": hashlib.sha256(seed.encode()).hexdigest()[:22],
                        "sg_message_id": f"{item.message_id}.filter0001.{number}",
                        "category": list(item.categories),
                        **item.custom_args,
                    }
                )
        return events

    # -- FakeServer hooks ---------------------------------------------------------------------

    def extra_headers(self, request: RecordedRequest) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "10000",
            "X-RateLimit-Remaining": "9999",
            "X-RateLimit-Reset": str(int(self.clock()) + 1),
        }

    def error_response(self, request: RecordedRequest, code: int) -> Response:
        return Response(code, {"errors": [_error("An error occurred on a SendGrid server", None)]})

    def authorize(self, request: RecordedRequest) -> Response | None:
        if request.path != "/v3/mail/send" or request.method != "POST":
            return Response(404, {"errors": [_error("not found", None)]})
        if request.header("Authorization") != f"Bearer {self.api_key}":
            return Response(
                401,
                {
                    "errors": [
                        _error(
                            "The provided authorization grant is invalid, expired, or revoked", None
                        )
                    ]
                },
            )
        return None

    def validate(self, request: RecordedRequest) -> Response | None:
        if len(request.body) > MAX_BODY_BYTES:
            return Response(413, {"errors": [_error("Payload too large", None)]})
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": [_error("Bad Request", None)]})
        errors: list[dict[str, Any]] = []
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
            errors.append(
                _error("The personalizations field must have 1 to 1000 items", "personalizations")
            )
            return Response(400, {"errors": errors})
        seen: dict[str, int] = {}
        recipients = 0
        message_args = body.get("custom_args") or {}
        for i, p in enumerate(personalizations):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to:
                errors.append(
                    _error(
                        "The to array is required for all personalization objects",
                        f"personalizations.{i}.to",
                    )
                )
                continue
            for kind in ("to", "cc", "bcc"):
                for j, recipient in enumerate(p.get(kind) or []):
                    recipients += 1
                    email = str(recipient.get("email", ""))
                    if not _EMAIL.match(email):
                        errors.append(
                            _error(
                                "Does not contain a valid address.",
                                f"personalizations.{i}.{kind}.{j}.email",
                            )
                        )
                        continue
                    key = email.lower()
                    if key in seen:
                        errors.append(
                            _error(
                                "Each email address in the personalization block should be unique between "
                                f"to, cc, and bcc. We found the first duplicate instance of [{email}] in the "
                                f"personalizations.{i}.{kind} field.",
                                f"personalizations.{i}.{kind}",
                            )
                        )
                    seen[key] = i
            args = {**message_args, **(p.get("custom_args") or {})}
            if len(json.dumps(args).encode()) > 10_000:
                errors.append(
                    _error(
                        "custom_args may not exceed 10,000 bytes",
                        f"personalizations.{i}.custom_args",
                    )
                )
            if not body.get("subject") and not p.get("subject") and not body.get("template_id"):
                errors.append(_error("The subject is required", "subject"))
        if recipients > 1000:
            errors.append(
                _error(
                    "The total number of recipients must be no more than 1000", "personalizations"
                )
            )
        sender = body.get("from") or {}
        if not _EMAIL.match(str(sender.get("email", ""))):
            errors.append(_error("The from email does not contain a valid address.", "from.email"))
        if not body.get("content") and not body.get("template_id"):
            errors.append(
                _error(
                    "Unless a valid template_id is provided, the content parameter is required.",
                    "content",
                )
            )
        categories = body.get("categories") or []
        if len(set(categories)) > 10 or any(len(str(c)) > 255 for c in categories):
            errors.append(_error("categories: at most 10 of up to 255 characters", "categories"))
        for setting, value in (body.get("mail_settings") or {}).items():
            if setting.startswith("bypass_") and (value or {}).get("enable"):
                self.violation(
                    f"fake SendGrid: request {request.index} sets mail_settings.{setting}"
                )
        if errors:
            return Response(400, {"errors": errors})
        return None

    def accept(self, request: RecordedRequest) -> Response:
        body = request.json()
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
            self.sandbox_requests += 1
            return Response(200, None)
        message_id = uuid.uuid4().hex[:22]
        message_args = body.get("custom_args") or {}
        categories = tuple(body.get("categories") or ())
        delivered = []
        for p in body["personalizations"]:
            args = {**message_args, **(p.get("custom_args") or {})}
            for recipient in p["to"]:
                delivered.append(
                    Delivered(
                        send_id=args.get("send_id"),
                        email=recipient["email"],
                        campaign=args.get("campaign"),
                        message_id=message_id,
                        request_index=request.index,
                        custom_args={str(k): str(v) for k, v in args.items()},
                        categories=categories,
                    )
                )
        with self._delivered_lock:
            self.delivered.extend(delivered)
        return Response(202, None, headers={"X-Message-Id": message_id})


def start_fake_sendgrid(**kwargs: Any) -> FakeSendGrid:
    return FakeSendGrid(**kwargs).start()  # type: ignore[return-value]

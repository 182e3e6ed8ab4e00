"""A fake Twilio Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
HTTP basic auth (account SID + auth token), 201 with the message resource on success.

Errors as Twilio sends them (JSON `code`, `message`, `more_info`, `status`): 20003 bad
credentials (401), 21211 invalid `To` (its message quotes the number, as Twilio's does), 21603
missing sender, 21602 empty body, 21610 recipient opted out (`opted_out`), 20429 with
`Retry-After` on a scripted rate limit.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.server import FakeServer, RecordedRequest, Response

_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


@dataclass(frozen=True)
class Sms:
    sid: str
    to: str
    body: str
    send_id: str | None
    request_index: int


def _twilio_error(status: int, code: int, message: str) -> Response:
    return Response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio(FakeServer):
    name = "fake Twilio"

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 31 + "1",
        auth_token: str = "fake-auth-token",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out: set[str] = set()
        self.messages: list[Sms] = []
        self._messages_lock = threading.Lock()

    def received_send_ids(self) -> list[str]:
        with self._messages_lock:
            return [m.send_id for m in self.messages if m.send_id]

    def duplicates(self) -> dict[str, int]:
        return {k: v for k, v in Counter(self.received_send_ids()).items() if v > 1}

    def error_response(self, request: RecordedRequest, code: int) -> Response:
        return _twilio_error(code, 20500, "Internal Server Error")

    def rate_limit_response(self, request: RecordedRequest, reset_epoch: int) -> Response:
        response = _twilio_error(429, 20429, "Too Many Requests")
        response.headers["Retry-After"] = str(max(1, reset_epoch - int(self.clock())))
        return response

    def authorize(self, request: RecordedRequest) -> Response | None:
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return _twilio_error(404, 20404, "The requested resource was not found")
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            match.group(1) != self.account_sid
            or request.header("Authorization") != f"Basic {expected}"
        ):
            return _twilio_error(401, 20003, "Authenticate")
        return None

    def validate(self, request: RecordedRequest) -> Response | None:
        if not (request.header("Content-Type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _twilio_error(400, 20001, "Content-Type must be form-encoded")
        form = request.form()
        to = form.get("To", "")
        if not _E164.match(to):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        body = form.get("Body", "")
        if not body:
            return _twilio_error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if to in self.opted_out:
            return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def accept(self, request: RecordedRequest) -> Response:
        form = request.form()
        callback = form.get("StatusCallback")
        send_id = dict(parse_qsl(urlsplit(callback).query)).get("send_id") if callback else None
        sid = "SM" + uuid.uuid4().hex
        with self._messages_lock:
            self.messages.append(
                Sms(
                    sid=sid,
                    to=form["To"],
                    body=form["Body"],
                    send_id=send_id,
                    request_index=request.index,
                )
            )
        return Response(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": None,
                "date_updated": None,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )


def start_fake_twilio(**kwargs: Any) -> FakeTwilio:
    return FakeTwilio(**kwargs).start()  # type: ignore[return-value]

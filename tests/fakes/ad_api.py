"""A fake ad-platform audience API: `POST /v1/audiences/members` with a bearer token and
`{"audience": ..., "users": [{"email_sha256": ..., "phone_sha256": ...}]}`. Every identifier
must be a lower-case 64-hex SHA-256 and a call carries at most 10,000 users (Meta's limit);
anything else is a violation, because it would mean raw PII or an oversized call left us.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from tests.fakes.server import FakeServer, RecordedRequest, Response

MAX_USERS = 10_000
_HASH = re.compile(r"^[0-9a-f]{64}$")
_KEYS = {"email_sha256", "phone_sha256"}


class FakeAdApi(FakeServer):
    name = "fake ad API"

    def __init__(self, *, token: str = "fake-ad-token", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.users: list[dict[str, str]] = []
        self.audiences: set[str] = set()
        self._users_lock = threading.Lock()

    @property
    def members_url(self) -> str:
        return f"{self.url}/v1/audiences/members"

    def authorize(self, request: RecordedRequest) -> Response | None:
        if request.path != "/v1/audiences/members" or request.method != "POST":
            return Response(404, {"error": "not found"})
        if request.header("Authorization") != f"Bearer {self.token}":
            return Response(401, {"error": "bad token"})
        return None

    def validate(self, request: RecordedRequest) -> Response | None:
        try:
            users = request.json()["users"]
        except (ValueError, KeyError, TypeError):
            return Response(400, {"error": "expected {audience, users}"})
        if len(users) > MAX_USERS:
            self.violation(f"{self.name}: {len(users)} users in one call (limit {MAX_USERS})")
            return Response(413, {"error": "too many users"})
        for number, user in enumerate(users):
            if not isinstance(user, dict) or not user or set(user) - _KEYS:
                self.violation(
                    f"{self.name}: user {number} of request {request.index} has unexpected fields"
                )
                return Response(400, {"error": "bad user"})
            for key, value in user.items():
                if not isinstance(value, str) or not _HASH.match(value):
                    self.violation(
                        f"{self.name}: {key} of user {number} is not a SHA-256 hex digest"
                    )
                    return Response(400, {"error": "identifiers must be SHA-256 hex"})
        return None

    def accept(self, request: RecordedRequest) -> Response:
        payload = request.json()
        with self._users_lock:
            self.users.extend(payload["users"])
            self.audiences.add(str(payload.get("audience")))
        return Response(200, {"received": len(payload["users"])})


def start_fake_ad_api(token: str = "fake-ad-token", **kwargs: Any) -> FakeAdApi:
    return FakeAdApi(token=token, **kwargs).start()  # type: ignore[return-value]

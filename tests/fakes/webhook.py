"""A fake webhook receiver that does what a careful receiver must: verify the HMAC-SHA256
signature of "<X-Timestamp>.<raw body>" in constant time, refuse timestamps more than 300 s
away, and deduplicate on the Idempotency-Key (a repeat is answered 200 and not processed
again). An unsigned or mis-signed request is a violation: our client must always sign.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import Counter
from typing import Any

from tests.fakes.server import FakeServer, RecordedRequest, Response


class FakeWebhookReceiver(FakeServer):
    name = "fake webhook receiver"

    def __init__(self, *, secret: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secret = secret
        self.processed: dict[str, dict[str, Any]] = {}
        self.deliveries: list[str] = []
        self._lock_processed = threading.Lock()

    def received_send_ids(self) -> list[str]:
        """Every delivery, duplicates included (a resend the idempotency key absorbed)."""
        with self._lock_processed:
            return list(self.deliveries)

    def processed_send_ids(self) -> set[str]:
        with self._lock_processed:
            return set(self.processed)

    def duplicates(self) -> dict[str, int]:
        return {k: v for k, v in Counter(self.received_send_ids()).items() if v > 1}

    def validate(self, request: RecordedRequest) -> Response | None:
        timestamp = request.header("X-Timestamp") or ""
        signature = request.header("X-Signature") or ""
        expected = (
            "sha256="
            + hmac.new(
                self.secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, signature):
            self.violation(f"{self.name}: request {request.index} has a bad signature")
            return Response(401, {"error": "bad signature"})
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > 300:
            self.violation(f"{self.name}: request {request.index} has a stale timestamp")
            return Response(401, {"error": "stale timestamp"})
        if not request.header("Idempotency-Key"):
            self.violation(f"{self.name}: request {request.index} has no Idempotency-Key")
            return Response(400, {"error": "Idempotency-Key required"})
        return None

    def accept(self, request: RecordedRequest) -> Response:
        key = request.header("Idempotency-Key") or ""
        with self._lock_processed:
            self.deliveries.append(key)
            if key not in self.processed:
                self.processed[key] = request.json()
        return Response(200, {"ok": True})


def start_fake_webhook(secret: str = "fake-webhook-secret", **kwargs: Any) -> FakeWebhookReceiver:
    return FakeWebhookReceiver(secret=secret, **kwargs).start()  # type: ignore[return-value]

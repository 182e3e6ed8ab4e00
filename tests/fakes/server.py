"""The shared machinery of the fake providers: a threaded HTTP server on an ephemeral loopback
port, request recording, scripted and seeded-random faults, rate-limit windows and violations.
"""

from __future__ import annotations

import json
import math
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Fault:
    """What the fake does with one request.

    - `ok`: process and answer success.
    - `status`: answer `status` (500, 503...); with `accept=True` the request is processed
      anyway (the duplicate-send hazard: the provider queued it but said it failed).
    - `rate_limit`: answer 429 and refuse everything for `window_s` (rounded up to the reset
      second it announces); a request inside the window is a violation.
    - `timeout`: stall `delay_s` (past the client's timeout), processing first if `accept`.
    - `reset`: drop the connection without an answer, processing first if `accept`.
    """

    kind: str = "ok"
    status: int = 500
    accept: bool = False
    window_s: float = 1.0
    delay_s: float = 1.0


def ok() -> Fault:
    return Fault("ok")


def status(code: int, *, accept: bool = False) -> Fault:
    return Fault("status", status=code, accept=accept)


def rate_limit(window_s: float = 1.0) -> Fault:
    return Fault("rate_limit", status=429, window_s=window_s)


def timeout(delay_s: float = 1.0, *, accept: bool = True) -> Fault:
    return Fault("timeout", delay_s=delay_s, accept=accept)


def reset(*, accept: bool = False) -> Fault:
    return Fault("reset", accept=accept)


@dataclass
class RecordedRequest:
    index: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None
    fault: str = "ok"

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


RESET = Response(status=-1)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or a connection the fake reset on purpose is not an error.
        return


class FakeServer:
    """Subclasses implement `authorize`, `validate` and `accept` (see `_respond`)."""

    name = "fake"

    def __init__(
        self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.refuse_all = False
        # Called with each request before it is processed, and after it was accepted but before
        # the answer is written (the kill -9 test stops the client at these points).
        self.before_hook: Callable[[RecordedRequest], None] | None = None
        self.after_accept_hook: Callable[[RecordedRequest], None] | None = None
        self.blocked_until = 0.0
        self._script: deque[Fault] = deque()
        self._random: tuple[random.Random, float, tuple[Fault, ...]] | None = None
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        # Open connections and when the last one was accepted (see wait_disconnected).
        self._connections = 0
        self._last_connected = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ------------------------------------------------------------------------

    def script(self, *faults: Fault) -> FakeServer:
        """Faults for the next requests, in order; after them every request is `ok`."""
        with self._lock:
            self._script.extend(faults)
        return self

    def random_faults(
        self, rate: float, *, seed: int, faults: tuple[Fault, ...] | None = None
    ) -> FakeServer:
        """Each request (after the script) fails with probability `rate`, drawing one of
        `faults` (default: 500 and 503, processed or not, timeouts and resets)."""
        choices = faults or (
            status(500),
            status(503),
            status(500, accept=True),
            timeout(0.6, accept=True),
            timeout(0.6, accept=False),
            reset(accept=False),
            reset(accept=True),
        )
        with self._lock:
            self._random = (random.Random(seed), rate, choices)
        return self

    def no_faults(self) -> FakeServer:
        with self._lock:
            self._script.clear()
            self._random = None
        return self

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle plus delayed ACK
            # adds ~40 ms to every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                # Counted once set up: finish() runs only for a handler whose setup succeeded.
                with fake._idle:
                    fake._connections += 1
                    fake._last_connected = time.monotonic()

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with fake._idle:
                        fake._connections -= 1
                        fake._idle.notify_all()

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until no request is being handled (a stalled `timeout` fault included)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name}: {self._active} requests still in progress")
                self._idle.wait(remaining)

    def wait_disconnected(self, quiet_s: float = 0.2, timeout_s: float = 10.0) -> None:
        """Wait until every connection is closed and none was accepted for `quiet_s`: once a
        client process is dead, the fake has then read and recorded everything it sent. A
        request the client wrote just before it was killed can still sit in the socket buffer
        (or its connection in the listen backlog) after `wait_idle` returns, and be recorded
        later; the kill -9 test needs the complete list of what the dead client delivered."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while True:
                now = time.monotonic()
                quiet_for = now - self._last_connected
                if not self._connections and not self._active and quiet_for >= quiet_s:
                    return
                if now >= deadline:
                    raise TimeoutError(f"{self.name}: {self._connections} connections still open")
                self._idle.wait(min(deadline - now, max(quiet_s - quiet_for, 0.01)))

    def assert_no_violations(self) -> None:
        assert not self.violations, f"{self.name} saw violations: {self.violations[:5]}"

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    # -- subclass hooks -----------------------------------------------------------------------

    def authorize(self, request: RecordedRequest) -> Response | None:
        return None

    def validate(self, request: RecordedRequest) -> Response | None:
        return None

    def accept(self, request: RecordedRequest) -> Response:
        return Response(200, {})

    def error_response(self, request: RecordedRequest, code: int) -> Response:
        return Response(code, {"errors": [{"message": "fake failure", "field": None}]})

    def rate_limit_response(self, request: RecordedRequest, reset_epoch: int) -> Response:
        return Response(
            429,
            {"errors": [{"message": "too many requests", "field": None}]},
            headers={
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset_epoch),
                "Retry-After": str(max(1, math.ceil(reset_epoch - self.clock()))),
            },
        )

    def extra_headers(self, request: RecordedRequest) -> dict[str, str]:
        return {}

    # -- request handling ---------------------------------------------------------------------

    def _next_fault(self) -> Fault:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self._random is not None:
                rng, rate, choices = self._random
                if rng.random() < rate:
                    return rng.choice(choices)
            return ok()

    def _respond(self, request: RecordedRequest) -> Response:
        now = self.clock()
        if self.refuse_all:
            self.violation(f"{self.name}: request {request.method} {request.path} while refuse_all")
            return self.error_response(request, 503)
        if now < self.blocked_until:
            self.violation(
                f"{self.name}: request at {now:.3f} inside the rate-limit window "
                f"ending {self.blocked_until:.3f}"
            )
            return self.rate_limit_response(request, int(self.blocked_until))
        refused = self.authorize(request)
        if refused is not None:
            return refused
        fault = self._next_fault()
        request.fault = fault.kind if fault.kind != "status" else f"status {fault.status}"
        if fault.kind == "rate_limit":
            reset_epoch = math.ceil(now + fault.window_s)
            with self._lock:
                self.blocked_until = max(self.blocked_until, float(reset_epoch))
            return self.rate_limit_response(request, reset_epoch)
        invalid = self.validate(request)
        if invalid is not None:
            return invalid
        if self.before_hook is not None:
            self.before_hook(request)
        if fault.kind == "ok":
            response = self.accept(request)
            if self.after_accept_hook is not None:
                self.after_accept_hook(request)
            return response
        if fault.accept:
            response = self.accept(request)
            if self.after_accept_hook is not None:
                self.after_accept_hook(request)
        else:
            response = self.error_response(request, 503)
        if fault.kind == "status":
            return self.error_response(request, fault.status)
        if fault.kind == "timeout":
            self.sleep(fault.delay_s)
            return response
        return RESET

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        with self._lock:
            request = RecordedRequest(
                index=len(self.requests),
                method=handler.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query)),
                headers=dict(handler.headers.items()),
                body=body,
                at=self.clock(),
            )
            self.requests.append(request)
            self._active += 1
        try:
            response = self._respond(request)
            request.status = response.status
            if response is RESET:
                # SO_LINGER 0: close() sends a TCP RST, the client sees a connection reset.
                handler.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                handler.close_connection = True
                handler.connection.close()
                return
            self._write(handler, request, response)
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _write(
        self, handler: BaseHTTPRequestHandler, request: RecordedRequest, response: Response
    ) -> None:
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes):
            payload = response.body
        elif isinstance(response.body, str):
            payload = response.body.encode()
        else:
            payload = json.dumps(response.body).encode()
        handler.send_response(response.status)
        headers = {**self.extra_headers(request), **response.headers}
        for key, value in headers.items():
            handler.send_header(key, value)
        if payload:
            handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

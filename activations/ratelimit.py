"""Client-side rate caps and retry timing, one `Destination` per provider endpoint.

Each channel owns its own `Destination`, so a provider that is slow or rate-limiting only
delays its own messages (rudder-server #4953 is the cautionary tale of one shared queue).

Only calls that the provider certainly did not process are retried here: a 429 (SendGrid and
Twilio both document that a 429 is refused, never queued) and a connection that was refused
before any byte was sent. A 5xx, a timeout or a reset mid-request may have been queued, so the
caller records it as `unknown` and reconciles it instead of retrying.

The clock and sleep are injectable so tests can drive a rate-limit window without waiting, and
a fake provider can share the same clock to check that no request arrives inside a window.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a destination may be retried within one dispatch run."""

    # Retries of one request that the provider refused (429) or never received.
    max_retries: int = 5
    # Exponential backoff with full jitter when the provider gives no reset time.
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # A reset further away than this ends the run for this destination (rows stay planned
    # for the next run) instead of holding a worker hostage for an hour-long window.
    max_wait_s: float = 120.0
    # Added after a provider-given reset so many clients do not wake up on the same second.
    reset_jitter_s: float = 0.25


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2**attempt)]."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** max(attempt, 0)))
    return rng.uniform(0.0, ceiling)


def header_value(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header by case-insensitive name, stripped; None when absent."""
    if not headers:
        return None
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if str(key).lower() == lowered:
                value = candidate
                break
    return None if value is None else str(value).strip()


def reset_at(headers: Mapping[str, Any] | None, now: float) -> float | None:
    """The epoch second a rate-limit window ends, from `Retry-After` (seconds or an HTTP date)
    or `X-RateLimit-Reset` (SendGrid: a Unix epoch). None when neither header is usable."""
    retry_after = header_value(headers, "Retry-After")
    if retry_after:
        try:
            return now + max(0.0, float(retry_after))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                parsed = None
            if parsed is not None:
                return parsed.timestamp()
    reset = header_value(headers, "X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        # Some providers send seconds-until-reset rather than an epoch; no epoch is this small.
        return now + value if value < 1_000_000_000 else value
    return None


class TokenBucket:
    """A client-side request-rate cap: `rate` tokens per second, bursts of up to `capacity`."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens`, sleeping until they are available; returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return slept
                wait = (tokens - self._tokens) / self.rate
            self._sleep(wait)
            slept += wait


@dataclass(frozen=True)
class Attempt:
    """One classified HTTP attempt, as a channel sees it.

    kind:
    - `ok`: 2xx.
    - `rate_limited`: 429, refused by the provider; retried after its reset.
    - `not_received`: the request never reached the provider (connection refused, DNS);
      retried with backoff.
    - anything else (`unknown`, `rejected`, `config_error`, ...): returned to the channel as is.
    """

    kind: str
    status: int | None = None
    headers: Mapping[str, Any] | None = None
    body: Any = None
    error: str | None = None


@dataclass(frozen=True)
class CallResult:
    attempt: Attempt
    # Set when the destination gave up for this run (reset too far away, retries exhausted).
    gave_up: str | None = None
    retries: int = 0


class Destination:
    """Rate cap, rate-limit windows and retries for one provider endpoint.

    `call(fn)` runs `fn` (one HTTP request returning an `Attempt`) under the client-side cap,
    never inside a window the provider announced, and retries refused attempts with bounded,
    jittered waits.
    """

    def __init__(
        self,
        name: str,
        *,
        max_requests_per_s: float | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._bucket = (
            TokenBucket(max_requests_per_s, clock=clock, sleep=sleep)
            if max_requests_per_s
            else None
        )
        self.blocked_until = 0.0
        self.requests = 0
        self.rate_limited = 0
        self.waited_s = 0.0

    def _wait_for_window(self) -> None:
        wait = self.blocked_until - self._clock()
        if wait > 0:
            self._sleep(wait)
            self.waited_s += wait

    def _note_quota(self, attempt: Attempt) -> None:
        # SendGrid sends X-RateLimit-Remaining on every response: at 0 the next request would be
        # refused, so wait for the reset up front rather than spend a request learning it.
        remaining = header_value(attempt.headers, "X-RateLimit-Remaining")
        if remaining is not None and remaining.isdigit() and int(remaining) == 0:
            until = reset_at(attempt.headers, self._clock())
            if until is not None:
                self.blocked_until = max(self.blocked_until, until)

    def call(self, fn: Callable[[], Attempt]) -> CallResult:
        retries = 0
        while True:
            self._wait_for_window()
            if self._bucket is not None:
                self.waited_s += self._bucket.acquire()
            self.requests += 1
            attempt = fn()
            self._note_quota(attempt)
            if attempt.kind == "rate_limited":
                self.rate_limited += 1
                now = self._clock()
                until = reset_at(attempt.headers, now)
                if until is None:
                    wait = backoff_delay(retries, self.policy, self._rng)
                else:
                    wait = max(0.0, until - now) + self._rng.uniform(0, self.policy.reset_jitter_s)
                if retries >= self.policy.max_retries:
                    return CallResult(
                        attempt, gave_up="rate limited, retries exhausted", retries=retries
                    )
                if wait > self.policy.max_wait_s:
                    self.blocked_until = now + wait
                    announced = math.ceil((until - now) if until is not None else wait)
                    return CallResult(
                        attempt,
                        gave_up=f"rate limited for {announced} s (more than max_wait_s)",
                        retries=retries,
                    )
                self.blocked_until = max(self.blocked_until, now + wait)
                retries += 1
                continue
            if attempt.kind == "not_received":
                if retries >= self.policy.max_retries:
                    return CallResult(attempt, gave_up="destination unreachable", retries=retries)
                wait = backoff_delay(retries, self.policy, self._rng)
                self._sleep(wait)
                self.waited_s += wait
                retries += 1
                continue
            return CallResult(attempt, retries=retries)

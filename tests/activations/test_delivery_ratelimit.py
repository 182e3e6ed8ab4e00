"""Rate caps, reset headers and bounded, jittered retries, driven by an injected clock."""

from __future__ import annotations

import email.utils
import random

from activations.ratelimit import (
    Attempt,
    Destination,
    RetryPolicy,
    TokenBucket,
    backoff_delay,
    reset_at,
)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_reset_at_reads_retry_after_seconds_dates_and_sendgrid_epochs() -> None:
    now = 1_800_000_000.0
    assert reset_at({"Retry-After": "3"}, now) == now + 3
    http_date = email.utils.formatdate(now + 7, usegmt=True)
    assert reset_at({"retry-after": http_date}, now) == now + 7
    assert reset_at({"X-RateLimit-Reset": str(int(now) + 5)}, now) == int(now) + 5
    assert reset_at({"X-RateLimit-Reset": "4"}, now) == now + 4
    assert reset_at({"X-RateLimit-Reset": "soon"}, now) is None
    assert reset_at({}, now) is None


def test_token_bucket_caps_the_request_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, capacity=1, clock=clock.time, sleep=clock.sleep)
    for _ in range(11):
        bucket.acquire()
    # 1 token up front, then one every 0.2 s.
    assert abs((clock.now - 1_800_000_000.0) - 2.0) < 1e-6


def test_backoff_is_full_jitter_and_bounded() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(1)
    delays = [backoff_delay(attempt, policy, rng) for attempt in range(10) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 400


def test_destination_waits_for_the_announced_reset_before_retrying() -> None:
    clock = FakeClock()
    reset = int(clock.now) + 30
    answers = [Attempt("rate_limited", 429, {"X-RateLimit-Reset": str(reset)}), Attempt("ok", 202)]
    calls: list[float] = []

    def call() -> Attempt:
        calls.append(clock.now)
        return answers.pop(0)

    destination = Destination("sendgrid", clock=clock.time, sleep=clock.sleep, rng=random.Random(0))
    result = destination.call(call)
    assert result.attempt.kind == "ok" and result.retries == 1
    assert calls[1] >= reset
    assert calls[1] - reset <= destination.policy.reset_jitter_s


def test_destination_gives_up_on_a_reset_beyond_its_patience() -> None:
    clock = FakeClock()
    calls = []

    def call() -> Attempt:
        calls.append(clock.now)
        return Attempt("rate_limited", 429, {"Retry-After": "3600"})

    destination = Destination(
        "slow", policy=RetryPolicy(max_wait_s=60), clock=clock.time, sleep=clock.sleep
    )
    result = destination.call(call)
    assert result.gave_up and "3600" in result.gave_up
    assert len(calls) == 1 and clock.sleeps == []


def test_destination_retries_unreachable_with_bounded_backoff_but_never_unknown() -> None:
    clock = FakeClock()
    unreachable = Destination(
        "down", policy=RetryPolicy(max_retries=3), clock=clock.time, sleep=clock.sleep
    )
    result = unreachable.call(lambda: Attempt("not_received", error="refused"))
    assert result.gave_up == "destination unreachable" and unreachable.requests == 4

    calls = []
    flaky = Destination("flaky", clock=clock.time, sleep=clock.sleep)
    result = flaky.call(lambda: calls.append(1) or Attempt("unknown", 500))
    assert result.attempt.kind == "unknown" and len(calls) == 1


def test_remaining_zero_makes_the_next_call_wait_for_the_reset() -> None:
    clock = FakeClock()
    reset = int(clock.now) + 10
    destination = Destination("sendgrid", clock=clock.time, sleep=clock.sleep)
    destination.call(
        lambda: Attempt("ok", 202, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    )
    calls = []
    destination.call(lambda: calls.append(clock.now) or Attempt("ok", 202))
    assert calls == [reset]

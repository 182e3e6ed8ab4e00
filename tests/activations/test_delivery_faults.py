"""R1/R2 against provider faults: 5xx, timeouts and resets make rows `unknown`; they are never
resent blindly, they are settled from provider events, released after the reconciliation
window, and every planned message ends up delivered exactly once."""

from __future__ import annotations

import datetime as dt
import socket
from collections import Counter

import duckdb
import pytest

from activations import ledger
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.dispatch import dispatch
from activations.events import ingest_sendgrid_events
from activations.ratelimit import RetryPolicy
from tests.fakes import FakeSendGrid, reset, status, timeout
from tests.fakes.clock import FakeClock
from tests.fakes.scenario import plan, planned_emails, render_email, statuses

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]

NOW = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _channel(fake: FakeSendGrid, batch: int = 10) -> SendGridEmailChannel:
    return SendGridEmailChannel(
        api_key="SG.fake-key",
        from_email="shop@example.com",
        host=fake.url,
        timeout_s=0.25,
        max_batch_size=batch,
    )


def _run(con, fake, *, at: dt.datetime, batch: int = 10, **options):
    return dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake, batch),
        render=render_email,
        consent="none",
        now=at,
        **options,
    )


def test_uncertain_outcomes_are_reconciled_not_resent(con, fake_sendgrid: FakeSendGrid) -> None:
    sends = planned_emails(70)
    plan(con, sends)
    fake_sendgrid.script(
        status(500),
        status(503, accept=True),
        timeout(0.5, accept=True),
        timeout(0.5, accept=False),
        reset(accept=True),
        reset(accept=False),
    )
    first = _run(con, fake_sendgrid, at=NOW)
    fake_sendgrid.wait_idle()
    assert (first.unknown, first.accepted) == (60, 10)
    queued = Counter(fake_sendgrid.received_send_ids())
    assert len(queued) == 40 and set(queued.values()) == {1}

    # Within the window and without events, nothing uncertain is touched.
    second = _run(con, fake_sendgrid, at=NOW + dt.timedelta(hours=1))
    assert second.attempted == 0 and second.released_for_retry == 0
    assert Counter(fake_sendgrid.received_send_ids()) == queued

    # Events settle the 30 the provider did queue; the other 30 stay unknown.
    report = ingest_sendgrid_events(con, fake_sendgrid.events())
    assert report.reconciled_accepted == 30
    assert ledger.status_counts(con, "newsletter") == {"accepted": 40, "unknown": 30}

    # After the reconciliation window the 30 with no event are sent again, once.
    third = _run(con, fake_sendgrid, at=NOW + dt.timedelta(hours=25))
    assert (third.released_for_retry, third.accepted) == (30, 30)
    assert Counter(fake_sendgrid.received_send_ids()) == Counter(s.send_id for s in sends)
    assert ledger.status_counts(con, "newsletter") == {"accepted": 70}
    attempts = dict(
        con.execute("select attempt_count, count(*) from activation.sends group by 1").fetchall()
    )
    assert attempts == {1: 40, 2: 30}


@pytest.mark.parametrize("seed", [3, 11])
def test_random_faults_converge_with_received_set_equal_to_planned_set(
    con,
    fake_sendgrid: FakeSendGrid,
    seed: int,
) -> None:
    sends = planned_emails(600)
    plan(con, sends)
    fake_sendgrid.random_faults(
        0.3,
        seed=seed,
        faults=(
            status(500),
            status(503),
            status(500, accept=True),
            timeout(0.4, accept=True),
            timeout(0.4, accept=False),
            reset(accept=True),
            reset(accept=False),
        ),
    )
    runs = 0
    while set(statuses(con, "newsletter").values()) != {"accepted"}:
        assert runs < 12, ledger.status_counts(con, "newsletter")
        _run(con, fake_sendgrid, at=NOW + dt.timedelta(hours=25 * runs), batch=50, max_attempts=20)
        fake_sendgrid.wait_idle()
        # Every send_id reaches SendGrid at most once, whatever the faults.
        assert not fake_sendgrid.duplicates()
        ingest_sendgrid_events(con, fake_sendgrid.events())
        runs += 1
        if runs == 6:
            fake_sendgrid.no_faults()
    assert Counter(fake_sendgrid.received_send_ids()) == Counter(s.send_id for s in sends)
    assert runs >= 2


def test_attempts_are_bounded_and_the_rest_held_for_review(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(10))
    fake_sendgrid.script(*[status(500)] * 3)
    for day in range(3):
        report = _run(con, fake_sendgrid, at=NOW + dt.timedelta(days=day), max_attempts=2)
    assert report.held_for_review == 10 and report.attempted == 0
    assert len(fake_sendgrid.mail_requests()) == 2
    assert ledger.status_counts(con, "newsletter") == {"unknown": 10}


def test_dropped_events_settle_unknown_rows_as_rejected(con, fake_sendgrid: FakeSendGrid) -> None:
    plan(con, planned_emails(10))
    fake_sendgrid.script(status(502, accept=True))
    _run(con, fake_sendgrid, at=NOW)
    events = fake_sendgrid.events("dropped")
    for event in events:
        event["reason"] = "Spam Content (if spam checker app enabled)"
    report = ingest_sendgrid_events(con, events)
    assert report.reconciled_rejected == 10 and report.suppressions_added == 0
    assert ledger.status_counts(con, "newsletter") == {"rejected": 10}


def test_in_flight_rows_of_a_stopped_run_become_unknown_first(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(20))
    con.execute(
        "update activation.sends set status = 'in_flight', attempt_count = 1, sent_at = ?, updated_at = ? "
        "where customer_id < 'c00005'",
        [NOW.replace(tzinfo=None), NOW.replace(tzinfo=None)],
    )
    report = _run(con, fake_sendgrid, at=NOW + dt.timedelta(minutes=5))
    assert (report.recovered_in_flight, report.accepted) == (5, 15)
    assert ledger.status_counts(con, "newsletter") == {"unknown": 5, "accepted": 15}


def test_an_unreachable_provider_is_retried_then_left_planned(con) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    channel = SendGridEmailChannel(
        api_key="SG.fake-key",
        from_email="shop@example.com",
        host=f"http://127.0.0.1:{port}",
        retry_policy=RetryPolicy(max_retries=3),
        clock=clock.time,
        sleep=clock.sleep,
    )
    plan(con, planned_emails(5))
    report = dispatch(
        con, campaign="newsletter", channel=channel, render=render_email, consent="none"
    )
    assert report.halted == "sendgrid: destination unreachable" and report.requests == 4
    assert len(clock.sleeps) == 3
    assert ledger.status_counts(con, "newsletter") == {"planned": 5}
    assert con.execute("select max(attempt_count) from activation.sends").fetchone() == (0,)

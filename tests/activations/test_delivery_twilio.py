"""SMS through the official twilio client redirected to the fake Messages API."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import duckdb
import pytest

from activations import ledger
from activations.channels.twilio_sms import TwilioSmsChannel
from activations.dispatch import DispatchError, dispatch
from tests.fakes import FakeTwilio, ok, rate_limit, start_fake_twilio, status, timeout
from tests.fakes.clock import FakeClock
from tests.fakes.scenario import plan, planned_sms, render_sms, statuses

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _channel(fake: FakeTwilio, **options) -> TwilioSmsChannel:
    options.setdefault("auth_token", fake.auth_token)
    return TwilioSmsChannel(
        account_sid=fake.account_sid,
        from_number="+15550000000",
        api_base_url=fake.url,
        status_callback_url="https://hooks.example.com/twilio/status",
        **options,
    )


def _dispatch(con, channel, campaign="sms_promo", **options):
    return dispatch(
        con, campaign=campaign, channel=channel, render=render_sms, consent="none", **options
    )


def test_sms_are_sent_once_each_with_an_opaque_status_callback(
    con, fake_twilio: FakeTwilio
) -> None:
    sends = planned_sms(45)
    plan(con, sends)
    report = _dispatch(con, _channel(fake_twilio))
    assert report.accepted == 45 and report.requests == 45
    assert Counter(fake_twilio.received_send_ids()) == Counter(s.send_id for s in sends)
    form = fake_twilio.requests[0].form()
    assert set(form) == {"To", "From", "Body", "StatusCallback"}
    assert form["StatusCallback"].startswith("https://hooks.example.com/twilio/status?send_id=")
    assert form["To"] not in form["StatusCallback"]
    sids = con.execute("select provider_message_id from activation.sends").fetchall()
    assert all(sid.startswith("SM") for (sid,) in sids)


def test_opted_out_numbers_are_suppressed_and_stay_suppressed(con, fake_twilio: FakeTwilio) -> None:
    sends = planned_sms(5)
    fake_twilio.opted_out.add(sends[3].address)
    plan(con, sends)
    report = _dispatch(con, _channel(fake_twilio))
    assert (report.accepted, report.suppressed) == (4, 1)
    assert statuses(con, "sms_promo")[sends[3].send_id] == "suppressed"
    assert ledger.suppressed_addresses(con, "sms") == {sends[3].address}
    # Another campaign to the same number is suppressed at dispatch without calling Twilio.
    plan(con, planned_sms(5, campaign="sms_followup"))
    requests_before = len(fake_twilio.requests)
    follow = _dispatch(con, _channel(fake_twilio), campaign="sms_followup")
    assert (follow.accepted, follow.suppressed) == (4, 1)
    assert len(fake_twilio.requests) - requests_before == 4


def test_20429_is_retried_after_retry_after_never_inside_the_window(con) -> None:
    clock = FakeClock()
    fake = start_fake_twilio(clock=clock.time)
    try:
        plan(con, planned_sms(12))
        fake.script(rate_limit(20), ok(), rate_limit(3))
        report = _dispatch(con, _channel(fake, clock=clock.time, sleep=clock.sleep))
        assert report.accepted == 12 and report.requests == 14
        assert len(set(fake.received_send_ids())) == 12
        assert sum(clock.sleeps) >= 23
        fake.assert_no_violations()
    finally:
        fake.stop()


def test_invalid_numbers_are_rejected_without_the_number_in_the_ledger(
    con, fake_twilio: FakeTwilio
) -> None:
    sends = planned_sms(3)
    bad = sends[1].__class__(**{**sends[1].__dict__, "address": "+0044123"})
    plan(con, [sends[0], bad, sends[2]])
    report = _dispatch(con, _channel(fake_twilio))
    assert (report.accepted, report.rejected) == (2, 1)
    error = con.execute(
        "select last_error from activation.sends where send_id = ?", [bad.send_id]
    ).fetchone()[0]
    assert error == "twilio HTTP 400 code 21211"


def test_bad_credentials_stop_the_run_with_every_row_still_planned(
    con, fake_twilio: FakeTwilio
) -> None:
    plan(con, planned_sms(30))
    with pytest.raises(DispatchError, match="20003"):
        _dispatch(con, _channel(fake_twilio, auth_token="wrong-token"))
    assert ledger.status_counts(con, "sms_promo") == {"planned": 30}
    assert len(fake_twilio.requests) == 1


def test_5xx_and_timeouts_are_unknown_not_retried(con, fake_twilio: FakeTwilio) -> None:
    plan(con, planned_sms(4))
    fake_twilio.script(status(500), timeout(0.5, accept=True))
    report = _dispatch(
        con, _channel(fake_twilio, timeout_s=0.25), now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    )
    fake_twilio.wait_idle()
    assert (report.unknown, report.accepted, report.requests) == (2, 2, 4)
    assert len(fake_twilio.received_send_ids()) == 3

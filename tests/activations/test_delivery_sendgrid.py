"""SendGrid Mail Send through the official client against the fake (R3, R12): batching limits,
request shape, per-personalization errors, account errors and 429 windows."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter

import duckdb
import pytest

from activations import ledger
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.dispatch import DispatchError, dispatch
from activations.ratelimit import RetryPolicy
from tests.fakes import FakeSendGrid, rate_limit, start_fake_sendgrid
from tests.fakes import sendgrid as fake_sendgrid_module
from tests.fakes.clock import FakeClock
from tests.fakes.scenario import plan, planned_emails, render_email, statuses

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _channel(fake: FakeSendGrid, **options) -> SendGridEmailChannel:
    options.setdefault("timeout_s", 5)
    return SendGridEmailChannel(
        api_key="SG.fake-key",
        from_email="shop@example.com",
        from_name="Shop",
        host=fake.url,
        **options,
    )


def _dispatch(con, channel, campaign="newsletter", **options):
    return dispatch(
        con, campaign=campaign, channel=channel, render=render_email, consent="none", **options
    )


def _personalizations(fake: FakeSendGrid) -> list[list[dict]]:
    return [r.json()["personalizations"] for r in fake.mail_requests() if r.status in (200, 202)]


@pytest.mark.parametrize("count", [0, 1, 999, 1000, 1001, 2500])
def test_batches_hold_at_most_1000_personalizations_and_deliver_each_once(
    con,
    fake_sendgrid: FakeSendGrid,
    count: int,
) -> None:
    sends = planned_emails(count)
    plan(con, sends)
    report = _dispatch(con, _channel(fake_sendgrid))
    sizes = [len(p) for p in _personalizations(fake_sendgrid)]
    assert sizes == [1000] * (count // 1000) + ([count % 1000] if count % 1000 else [])
    assert len(sizes) == math.ceil(count / 1000) == report.requests
    assert Counter(fake_sendgrid.received_send_ids()) == Counter(s.send_id for s in sends)
    assert report.accepted == count and set(statuses(con, "newsletter").values()) <= {"accepted"}


def test_duplicate_addresses_never_share_a_request(con, fake_sendgrid: FakeSendGrid) -> None:
    # 1,500 customers, 300 of them sharing an address with another (households, shared inboxes).
    sends = planned_emails(1500, address=lambda i: f"Person{i % 1200}@Example.com")
    plan(con, sends)
    report = _dispatch(con, _channel(fake_sendgrid))
    for personalizations in _personalizations(fake_sendgrid):
        addresses = [p["to"][0]["email"].lower() for p in personalizations]
        assert len(addresses) == len(set(addresses)) <= 1000
    assert Counter(fake_sendgrid.received_send_ids()) == Counter(s.send_id for s in sends)
    assert report.accepted == 1500 and report.rejected == 0


def test_unicode_names_and_substitutions_arrive_intact(con, fake_sendgrid: FakeSendGrid) -> None:
    names = ["Zoë", "李小龍", "محمد", "Ñandú 🦩", 'O\'Brien, "Jr."']
    sends = [
        s.__class__(**{**s.__dict__, "context": {"first_name": n, "last_name": ""}})
        for s, n in zip(planned_emails(len(names)), names, strict=True)
    ]
    plan(con, sends)
    _dispatch(con, _channel(fake_sendgrid))
    [personalizations] = _personalizations(fake_sendgrid)
    assert sorted(p["to"][0]["name"] for p in personalizations) == sorted(names)
    assert sorted(p["substitutions"]["-first_name-"] for p in personalizations) == sorted(names)


def test_messages_with_different_content_go_in_separate_requests(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(6))

    def render(row):
        message = render_email(row)
        # Content rendered per person (no substitutions) cannot share a request.
        return message.__class__(**{**message.__dict__, "html": f"<p>{row.customer_id}</p>"})

    report = dispatch(
        con, campaign="newsletter", channel=_channel(fake_sendgrid), render=render, consent="none"
    )
    assert report.requests == 6 and report.accepted == 6


def test_tags_are_opaque_and_no_bypass_setting_is_sent(con, fake_sendgrid: FakeSendGrid) -> None:
    plan(con, planned_emails(3))
    _dispatch(con, _channel(fake_sendgrid, asm_group_id=42))
    [request] = fake_sendgrid.mail_requests()
    body = request.json()
    assert body["categories"] == ["newsletter"]
    assert body["custom_args"] == {"campaign": "newsletter", "variant": "a"}
    assert all(set(p["custom_args"]) == {"send_id"} for p in body["personalizations"])
    assert body["asm"] == {"group_id": 42}
    assert "bypass" not in request.body.decode()
    assert "mail_settings" not in body


def test_sandbox_mode_is_validated_but_never_delivered(con, fake_sendgrid: FakeSendGrid) -> None:
    plan(con, planned_emails(5))
    report = _dispatch(con, _channel(fake_sendgrid, sandbox_mode=True))
    assert fake_sendgrid.sandbox_requests == 1 and fake_sendgrid.received_send_ids() == []
    assert report.accepted == 5


def test_a_bad_address_is_rejected_alone_and_the_rest_are_sent(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    sends = planned_emails(
        10, address=lambda i: "not-an-address" if i == 3 else f"p{i}@example.com"
    )
    plan(con, sends)
    report = _dispatch(con, _channel(fake_sendgrid))
    assert (report.accepted, report.rejected, report.requests) == (9, 1, 2)
    row = con.execute(
        "select status, last_error from activation.sends where send_id = ?", [sends[3].send_id]
    ).fetchone()
    assert row[0] == "rejected" and "to.0.email: Does not contain a valid address" in row[1]
    assert "not-an-address" not in row[1]
    assert sends[3].send_id not in fake_sendgrid.received_send_ids()


def test_oversized_requests_are_split_until_they_fit(
    con,
    fake_sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake_sendgrid_module, "MAX_BODY_BYTES", 60_000)
    sends = planned_emails(1000)
    plan(con, sends)
    report = _dispatch(con, _channel(fake_sendgrid))
    assert report.accepted == 1000 and report.rejected == 0
    assert Counter(fake_sendgrid.received_send_ids()) == Counter(s.send_id for s in sends)
    assert {r.status for r in fake_sendgrid.mail_requests()} == {202, 413}


def test_a_request_level_error_stops_the_run_and_loses_nothing(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(30))
    channel = SendGridEmailChannel(
        api_key="SG.fake-key", from_email="not-an-email", host=fake_sendgrid.url
    )
    with pytest.raises(DispatchError, match=r"from\.email"):
        _dispatch(con, channel)
    assert ledger.status_counts(con, "newsletter") == {"planned": 30}
    assert con.execute("select max(attempt_count) from activation.sends").fetchone() == (0,)


def test_a_wrong_key_stops_the_run_before_anything_is_lost(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(1500))
    channel = SendGridEmailChannel(
        api_key="SG.wrong", from_email="shop@example.com", host=fake_sendgrid.url
    )
    with pytest.raises(DispatchError, match="HTTP 401"):
        _dispatch(con, channel)
    assert ledger.status_counts(con, "newsletter") == {"planned": 1500}
    assert len(fake_sendgrid.mail_requests()) == 1
    assert "SG.wrong" not in str(con.execute("select * from activation.sends").fetchall())


def test_429_waits_for_the_reset_second_in_real_time(con, fake_sendgrid: FakeSendGrid) -> None:
    # The fixture fails the test if any request lands inside the announced window.
    plan(con, planned_emails(2500))
    fake_sendgrid.script(rate_limit(0.5))
    report = _dispatch(con, _channel(fake_sendgrid))
    requests = fake_sendgrid.mail_requests()
    assert requests[0].status == 429
    assert all(r.at >= fake_sendgrid.blocked_until for r in requests[1:])
    assert report.accepted == 2500 and report.requests == 4


def test_repeated_429_windows_are_honoured_on_a_shared_clock(con) -> None:
    clock = FakeClock()
    fake = start_fake_sendgrid(clock=clock.time)
    try:
        plan(con, planned_emails(3000))
        fake.script(rate_limit(30), rate_limit(5), rate_limit(60))
        channel = _channel(fake, max_batch_size=500, clock=clock.time, sleep=clock.sleep)
        report = _dispatch(
            con, channel, now=lambda: dt.datetime.fromtimestamp(clock.time(), dt.UTC)
        )
        assert report.accepted == 3000 and report.requests == 9
        assert sum(clock.sleeps) >= 30 + 5 + 60
        fake.assert_no_violations()
    finally:
        fake.stop()


def test_a_reset_beyond_patience_halts_this_destination_and_keeps_rows_planned(con) -> None:
    clock = FakeClock()
    fake = start_fake_sendgrid(clock=clock.time)
    try:
        plan(con, planned_emails(1200))
        fake.script(rate_limit(3600))
        policy = RetryPolicy(max_wait_s=120)
        channel = _channel(fake, clock=clock.time, sleep=clock.sleep, retry_policy=policy)
        report = _dispatch(con, channel)
        assert report.halted and "rate limited for 3600 s" in report.halted
        assert report.accepted == 0 and report.not_sent == 1000
        assert ledger.status_counts(con, "newsletter") == {"planned": 1200}
        assert len(fake.mail_requests()) == 1 and clock.sleeps == []
        clock.advance(3600)
        report = _dispatch(con, channel)
        assert report.accepted == 1200
        fake.assert_no_violations()
    finally:
        fake.stop()


def test_the_client_side_rate_cap_spaces_requests(con) -> None:
    clock = FakeClock()
    fake = start_fake_sendgrid(clock=clock.time)
    try:
        plan(con, planned_emails(50))
        channel = _channel(
            fake, max_batch_size=5, max_requests_per_s=2, clock=clock.time, sleep=clock.sleep
        )
        report = _dispatch(con, channel)
        times = [r.at for r in fake.mail_requests()]
        assert report.accepted == 50 and len(times) == 10
        # A burst of 2 (one second's worth), then one request every 0.5 s.
        assert times[-1] - times[0] >= (10 - 2) / 2 - 1e-6
        assert all(b - a >= 0.5 - 1e-6 for a, b in itertools.pairwise(times[1:]))
    finally:
        fake.stop()

"""R4/R5: the signed SendGrid Event Webhook and Twilio inbound STOP, end to end over HTTP:
verification, replay dedupe, malformed bodies, suppressions, reconciliation, and an
unsubscribe that arrives between plan and dispatch."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator

import duckdb
import pytest

from activations import ledger
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.channels.twilio_sms import TwilioSmsChannel
from activations.dispatch import dispatch
from activations.events import (
    EventSpool,
    EventWebhookReceiver,
    ingest_sendgrid_events,
    ingest_spool,
)
from tests.fakes import FakeSendGrid, FakeTwilio, timeout
from tests.fakes.scenario import (
    plan,
    planned_emails,
    planned_sms,
    render_email,
    render_sms,
    statuses,
)
from tests.fakes.signing import EventSigner

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]

TWILIO_TOKEN = "inbound-token"
TWILIO_URL = "https://hooks.example.com/twilio/inbound"
TWILIO_STATUS_URL = "https://hooks.example.com/twilio/status"


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


@pytest.fixture
def signer() -> EventSigner:
    return EventSigner()


@pytest.fixture
def spool(tmp_path) -> EventSpool:
    return EventSpool(tmp_path / "spool")


@pytest.fixture
def receiver(signer: EventSigner, spool: EventSpool) -> Iterator[EventWebhookReceiver]:
    server = EventWebhookReceiver(
        spool=spool,
        sendgrid_public_key=signer.public_key_b64,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_url=TWILIO_URL,
        twilio_status_url=TWILIO_STATUS_URL,
    ).start()
    yield server
    server.stop()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _event(kind: str, email: str, event_id: str, send_id: str | None = None, **extra) -> dict:
    event = {"email": email, "timestamp": int(time.time()), "event": kind, "sg_event_id": event_id}
    if send_id:
        event["send_id"] = send_id
    return {**event, **extra}


def _body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


def test_signed_events_are_accepted_and_ingested_once(con, receiver, signer, spool) -> None:
    body = _body(
        _event("delivered", "a@example.com", "ev-1"), _event("open", "a@example.com", "ev-2")
    )
    headers = signer.headers(body)
    assert _post(f"{receiver.url}/sendgrid/events", body, headers) == (200, "2 events accepted")
    # SendGrid retries on any doubt: the same post again, and once more inside a new batch.
    assert _post(f"{receiver.url}/sendgrid/events", body, headers)[0] == 200
    again = _body(
        _event("delivered", "a@example.com", "ev-1"), _event("click", "a@example.com", "ev-3")
    )
    assert _post(f"{receiver.url}/sendgrid/events", again, signer.headers(again))[0] == 200
    report = ingest_spool(con, spool)
    assert (report.received, report.new, report.duplicates) == (6, 3, 3)
    assert con.execute("select count(*) from activation.provider_events").fetchone() == (3,)
    assert spool.pending() == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("tampered body", 403),
        ("wrong key", 403),
        ("stale timestamp", 403),
        ("future timestamp", 403),
        ("missing signature", 403),
        ("missing timestamp", 403),
        ("signature not base64", 403),
    ],
)
def test_unverifiable_requests_are_refused_and_not_spooled(
    receiver, signer, spool, case, expected
) -> None:
    body = _body(_event("unsubscribe", "victim@example.com", "ev-x"))
    headers = signer.headers(body)
    if case == "tampered body":
        body = body.replace(b"victim", b"attack")
    elif case == "wrong key":
        headers = EventSigner().headers(body)
    elif case == "stale timestamp":
        headers = signer.headers(body, timestamp=int(time.time()) - 301)
    elif case == "future timestamp":
        headers = signer.headers(body, timestamp=int(time.time()) + 301)
    elif case == "missing signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif case == "missing timestamp":
        del headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    elif case == "signature not base64":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%not-base64%%%"
    status, _ = _post(f"{receiver.url}/sendgrid/events", body, headers)
    assert status == expected
    assert spool.pending() == []


def test_malformed_and_fuzzed_bodies_never_crash_the_receiver(con, receiver, signer, spool) -> None:
    for body in (b"{not json", b'{"event": "open"}', b"\xff\xfe\x00garbage", b""):
        assert _post(f"{receiver.url}/sendgrid/events", body, signer.headers(body))[0] == 400
    rng = random.Random(7)
    for _ in range(40):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        assert _post(f"{receiver.url}/sendgrid/events", body, signer.headers(body))[0] in (200, 400)
        assert _post(f"{receiver.url}/sendgrid/events", body, {})[0] == 403
    # Well-formed JSON with junk entries: the junk is counted, the real event kept.
    body = json.dumps(
        [1, "x", {}, {"sg_event_id": 5, "event": "open"}, _event("open", "b@example.com", "ok-1")]
    ).encode()
    assert _post(f"{receiver.url}/sendgrid/events", body, signer.headers(body))[0] == 200
    report = ingest_spool(con, spool)
    assert report.new == 1 and report.invalid == 4
    body = _body(_event("open", "c@example.com", "ok-2"))
    assert _post(f"{receiver.url}/sendgrid/events", body, signer.headers(body))[0] == 200


def test_events_turn_into_suppressions_by_their_meaning(con) -> None:
    events = [
        _event("unsubscribe", "Unsub@Example.com", "e1"),
        _event("spamreport", "spam@example.com", "e2"),
        _event(
            "bounce",
            "hard@example.com",
            "e3",
            type="bounce",
            reason="550 5.1.1 <hard@example.com>: no such user",
        ),
        _event("bounce", "soft@example.com", "e4", type="blocked"),
        _event("dropped", "known-bad@example.com", "e5", reason="Bounced Address"),
        _event(
            "dropped",
            "content@example.com",
            "e6",
            reason="Spam Content (if spam checker app enabled)",
        ),
        _event("group_unsubscribe", "group@example.com", "e7", asm_group_id=3),
        _event("group_unsubscribe", "back@example.com", "e8", asm_group_id=3),
        {
            **_event("group_resubscribe", "back@example.com", "e9", asm_group_id=3),
            "timestamp": int(time.time()) + 1,
        },
        _event("delivered", "fine@example.com", "e10"),
    ]
    report = ingest_sendgrid_events(con, events)
    assert ledger.suppressed_addresses(con, "email") == {
        "unsub@example.com",
        "spam@example.com",
        "hard@example.com",
        "known-bad@example.com",
        "group@example.com",
    }
    assert (report.suppressions_added, report.suppressions_lifted) == (6, 1)
    reasons = dict(
        con.execute("select event_id, reason from activation.provider_events").fetchall()
    )
    assert "hard@example.com" not in reasons["e3"] and "<email>" in reasons["e3"]
    assert con.execute(
        "select count(*) from activation.provider_events where reason like '%@%'"
    ).fetchone() == (0,)


def test_unsubscribe_between_plan_and_dispatch_means_zero_sends(
    con,
    receiver,
    signer,
    spool,
    fake_sendgrid: FakeSendGrid,
) -> None:
    sends = planned_emails(6)
    plan(con, sends)
    # The person unsubscribes (from an earlier newsletter) after planning, before dispatch.
    body = _body(_event("unsubscribe", "PERSON2@example.com", "unsub-2"))
    assert _post(f"{receiver.url}/sendgrid/events", body, signer.headers(body))[0] == 200
    channel = SendGridEmailChannel(
        api_key="SG.fake-key", from_email="shop@example.com", host=fake_sendgrid.url
    )
    report = dispatch(
        con,
        campaign="newsletter",
        channel=channel,
        render=render_email,
        consent="none",
        before_chunk=lambda c: ingest_spool(c, spool),
    )
    assert (report.accepted, report.suppressed) == (5, 1)
    delivered = {d.email for d in fake_sendgrid.delivered}
    assert "person2@example.com" not in {e.lower() for e in delivered} and len(delivered) == 5
    assert statuses(con, "newsletter")[sends[2].send_id] == "suppressed"


def _twilio_signature(url: str, params: dict[str, str]) -> str:
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(
        hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def _inbound(receiver, params: dict[str, str], signature: str | None = None) -> int:
    body = urllib.parse.urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers["X-Twilio-Signature"] = signature or _twilio_signature(TWILIO_URL, params)
    return _post(f"{receiver.url}/twilio/inbound", body, headers)[0]


def test_inbound_stop_suppresses_sms_and_start_lifts_it(
    con,
    receiver,
    spool,
    fake_twilio: FakeTwilio,
) -> None:
    sends = planned_sms(4)
    plan(con, sends)
    stop = {
        "MessageSid": "SM" + "1" * 32,
        "From": sends[1].address,
        "To": "+15550000000",
        "Body": " stop ",
    }
    assert _inbound(receiver, stop) == 200
    assert _inbound(receiver, stop) == 200
    assert _inbound(receiver, {**stop, "MessageSid": "SM" + "2" * 32}, signature="forged") == 403
    report = ingest_spool(con, spool)
    assert (report.new, report.duplicates, report.suppressions_added) == (1, 1, 1)
    channel = TwilioSmsChannel(
        account_sid=fake_twilio.account_sid,
        auth_token=fake_twilio.auth_token,
        from_number="+15550000000",
        api_base_url=fake_twilio.url,
    )
    result = dispatch(con, campaign="sms_promo", channel=channel, render=render_sms, consent="none")
    assert (result.accepted, result.suppressed) == (3, 1)
    assert sends[1].address not in {m.to for m in fake_twilio.messages}

    start = {**stop, "MessageSid": "SM" + "3" * 32, "Body": "START"}
    assert _inbound(receiver, start) == 200
    assert ingest_spool(con, spool).suppressions_lifted == 1
    assert ledger.suppressed_addresses(con, "sms") == set()


def test_sms_status_callbacks_reconcile_unknown_sends(
    con, receiver, spool, fake_twilio: FakeTwilio
) -> None:
    sends = planned_sms(6)
    plan(con, sends)
    fake_twilio.script(
        timeout(0.5, accept=True), timeout(0.5, accept=True), timeout(0.5, accept=False)
    )
    channel = TwilioSmsChannel(
        account_sid=fake_twilio.account_sid,
        auth_token=fake_twilio.auth_token,
        from_number="+15550000000",
        api_base_url=fake_twilio.url,
        status_callback_url=TWILIO_STATUS_URL,
        timeout_s=0.25,
    )
    now = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    first = dispatch(
        con, campaign="sms_promo", channel=channel, render=render_sms, consent="none", now=now
    )
    fake_twilio.wait_idle()
    assert (first.unknown, first.accepted) == (3, 3)
    # Twilio calls back for what it queued: one was delivered, one failed.
    for message, status_value in zip(
        fake_twilio.messages[:2], ("delivered", "failed"), strict=True
    ):
        query = urllib.parse.urlencode({"send_id": message.send_id})
        params = {"MessageSid": message.sid, "MessageStatus": status_value, "To": message.to}
        body = urllib.parse.urlencode(params).encode()
        signature = _twilio_signature(f"{TWILIO_STATUS_URL}?{query}", params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        assert _post(f"{receiver.url}/twilio/status?{query}", body, headers)[0] == 200
        assert (
            _post(
                f"{receiver.url}/twilio/status?{query}",
                body,
                {**headers, "X-Twilio-Signature": "x"},
            )[0]
            == 403
        )
    report = ingest_spool(con, spool)
    assert (report.reconciled_accepted, report.reconciled_rejected) == (1, 1)
    later = dispatch(
        con,
        campaign="sms_promo",
        channel=channel,
        render=render_sms,
        consent="none",
        now=now + dt.timedelta(hours=25),
    )
    assert (later.released_for_retry, later.accepted) == (1, 1)
    assert Counter(fake_twilio.received_send_ids()) == Counter(s.send_id for s in sends)
    assert ledger.status_counts(con, "sms_promo") == {"accepted": 5, "rejected": 1}

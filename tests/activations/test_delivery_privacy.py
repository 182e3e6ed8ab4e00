"""R12 with canaries: unique PII values and keys run through every delivery path (success,
provider errors that quote the recipient, retries, events) with all logging at DEBUG. None
may show up in provider tags, headers, logs, stdout/stderr, ledger errors or run reports."""

from __future__ import annotations

import json
import logging
import time
import uuid

import duckdb
import pytest

from activations.dispatch import dispatch
from activations.events import ingest_sendgrid_events
from activations.messages import PlannedSend, make_send_id
from activations.settings import ProviderSettings, build_channel
from tests.fakes import FakeSendGrid, FakeTwilio, status
from tests.fakes.scenario import render_email, render_sms

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def test_canary_pii_and_keys_never_leak(
    con,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    fake_sendgrid: FakeSendGrid,
    fake_twilio: FakeTwilio,
) -> None:
    tag = uuid.uuid4().hex[:12]
    email = f"canary+{tag}@example.com"
    first, last = f"Canaryfirst{tag}", f"Canarylast{tag}"
    phone = "+1555" + str(int(tag, 16))[-7:]
    bad_phone = "+0" + str(int(tag, 16))[-9:]
    secret_key = f"SG.canary-key-{tag}"
    secret_token = f"canary-token-{tag}"
    fake_sendgrid.api_key = secret_key
    fake_twilio.auth_token = secret_token
    canaries = [email, first, last, phone, bad_phone, secret_key, secret_token]

    def send(campaign: str, channel: str, customer: str, address: str) -> PlannedSend:
        return PlannedSend(
            send_id=make_send_id(campaign, customer, "2026-11-20", "a"),
            campaign=campaign,
            customer_id=customer,
            occasion="2026-11-20",
            variant="a",
            channel=channel,
            is_holdout=False,
            address=address,
            context={"first_name": first, "last_name": last},
        )

    from activations import ledger

    ledger.record_plan(
        con,
        "plan",
        [
            send("newsletter", "email", "c1", email),
            send("newsletter", "email", "c2", f"other{tag}@example.com"),
            send("sms_promo", "sms", "c1", phone),
            send("sms_promo", "sms", "c3", bad_phone),
        ],
    )
    settings = ProviderSettings.from_env(
        {
            "ACTIVATION_MODE": "live",
            "SENDGRID_API_KEY": secret_key,
            "SENDGRID_API_HOST": fake_sendgrid.url,
            "SENDGRID_FROM_EMAIL": "shop@example.com",
            "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
            "TWILIO_AUTH_TOKEN": secret_token,
            "TWILIO_API_BASE_URL": fake_twilio.url,
            "TWILIO_FROM_NUMBER": "+15550000000",
        }
    )
    caplog.set_level(logging.DEBUG)
    fake_sendgrid.script(status(500, accept=True))
    fake_twilio.opted_out.add(phone)
    reports = [
        dispatch(
            con,
            campaign="newsletter",
            channel=build_channel("email", settings, timeout_s=2),
            render=render_email,
            consent="none",
        ),
        dispatch(
            con,
            campaign="sms_promo",
            channel=build_channel("sms", settings),
            render=render_sms,
            consent="none",
        ),
    ]
    events = fake_sendgrid.events("processed", "bounce")
    for event in events:
        event["reason"] = f"550 5.1.1 <{event['email']}>: Recipient address rejected"
    ingest_sendgrid_events(con, events)
    logging.getLogger("activations").debug("end of run %s", time.time())

    # The messages did carry the PII where it belongs: the recipient and the greeting.
    assert email in fake_sendgrid.mail_requests()[0].body.decode()
    assert any(d.email == email for d in fake_sendgrid.delivered)

    tags = [
        json.dumps(
            {
                "categories": body.get("categories"),
                "custom_args": body.get("custom_args"),
                "personalization_args": [p.get("custom_args") for p in body["personalizations"]],
            }
        )
        for body in (r.json() for r in fake_sendgrid.mail_requests())
    ]
    headers = [
        json.dumps({k: v for k, v in r.headers.items() if k.lower() != "authorization"})
        for r in fake_sendgrid.requests + fake_twilio.requests
    ]
    callbacks = [r.form().get("StatusCallback", "") for r in fake_twilio.requests]
    captured = capfd.readouterr()
    ledger_text = json.dumps(
        con.execute(
            "select last_error, provider_message_id, run_id from activation.sends "
            "union all select reason, event_type, send_id from activation.provider_events"
        ).fetchall()
    )
    haystacks = {
        "provider tags": "\n".join(tags),
        "request headers": "\n".join(headers),
        "status callbacks": "\n".join(callbacks),
        "logs": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "ledger errors and events": ledger_text,
        "run reports": json.dumps([r.as_metadata() for r in reports]),
    }
    assert "bypass_" not in "".join(r.body.decode() for r in fake_sendgrid.mail_requests())
    assert "twilio HTTP 400 code 21211" in ledger_text and "<email>" in ledger_text
    leaks = {(where, c) for where, text in haystacks.items() for c in canaries if c in text}
    assert not leaks, leaks
    assert caplog.records, "logging was captured"

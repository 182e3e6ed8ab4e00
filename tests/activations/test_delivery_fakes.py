"""The fakes enforce the providers' documented limits (PROVIDERS.md §1), checked here with the
official clients directly, so the delivery tests that pass against them mean something."""

from __future__ import annotations

import json

import pytest
from python_http_client import exceptions
from sendgrid import SendGridAPIClient
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from activations.channels.twilio_sms import RedirectingHttpClient
from tests.fakes import FakeSendGrid, FakeTwilio, rate_limit

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]


def _mail(count: int, *, emails=None, **extra) -> dict:
    emails = emails or [f"p{i}@example.com" for i in range(count)]
    return {
        "personalizations": [
            {"to": [{"email": e}], "custom_args": {"send_id": f"s{i}"}}
            for i, e in enumerate(emails)
        ],
        "from": {"email": "shop@example.com"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "Hello"}],
        **extra,
    }


def _send(fake: FakeSendGrid, body: dict, key: str = "SG.fake-key"):
    client = SendGridAPIClient(api_key=key, host=fake.url)
    try:
        return client.send(body).status_code, None
    except exceptions.HTTPError as error:
        return error.status_code, json.loads(error.body)


def test_fake_sendgrid_accepts_a_valid_request_with_rate_limit_headers(
    fake_sendgrid: FakeSendGrid,
) -> None:
    status, _ = _send(fake_sendgrid, _mail(1000))
    assert status == 202
    assert (
        fake_sendgrid.requests[0].status == 202 and len(fake_sendgrid.received_send_ids()) == 1000
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_mail(1001), "personalizations"),
        (_mail(2, emails=["a@example.com", "A@example.com"]), "personalizations.1.to"),
        (_mail(1, emails=["no-at-sign"]), "personalizations.0.to.0.email"),
        (_mail(1, categories=[f"c{i}" for i in range(11)]), "categories"),
        (_mail(1, custom_args={"blob": "x" * 10_001}), "personalizations.0.custom_args"),
        ({**_mail(1), "from": {}}, "from.email"),
    ],
)
def test_fake_sendgrid_rejects_what_sendgrid_rejects(
    fake_sendgrid: FakeSendGrid, body: dict, field: str
) -> None:
    status, error = _send(fake_sendgrid, body)
    assert status == 400 and field in [e["field"] for e in error["errors"]]
    assert fake_sendgrid.received_send_ids() == []


def test_fake_sendgrid_auth_rate_limit_and_bypass_are_enforced(fake_sendgrid: FakeSendGrid) -> None:
    assert _send(fake_sendgrid, _mail(1), key="SG.wrong")[0] == 401
    fake_sendgrid.script(rate_limit(30))
    assert _send(fake_sendgrid, _mail(1))[0] == 429
    # A client that ignores the window is caught: the request is a recorded violation.
    assert _send(fake_sendgrid, _mail(1))[0] == 429
    assert (
        fake_sendgrid.violations and "inside the rate-limit window" in fake_sendgrid.violations[0]
    )
    fake_sendgrid.violations.clear()
    fake_sendgrid.blocked_until = 0
    _send(fake_sendgrid, _mail(1, mail_settings={"bypass_list_management": {"enable": True}}))
    assert fake_sendgrid.violations and "bypass_list_management" in fake_sendgrid.violations[0]
    fake_sendgrid.violations.clear()


def test_fake_twilio_speaks_the_messages_api(fake_twilio: FakeTwilio) -> None:
    client = Client(
        fake_twilio.account_sid,
        fake_twilio.auth_token,
        http_client=RedirectingHttpClient(fake_twilio.url),
    )
    message = client.messages.create(to="+4915100000001", from_="+15550000000", body="hi")
    assert message.sid.startswith("SM") and message.status == "queued"
    fake_twilio.opted_out.add("+4915100000002")
    with pytest.raises(TwilioRestException) as opted_out:
        client.messages.create(to="+4915100000002", from_="+15550000000", body="hi")
    assert (opted_out.value.status, opted_out.value.code) == (400, 21610)
    wrong = Client(
        fake_twilio.account_sid, "wrong", http_client=RedirectingHttpClient(fake_twilio.url)
    )
    with pytest.raises(TwilioRestException) as denied:
        wrong.messages.create(to="+4915100000001", from_="+15550000000", body="hi")
    assert (denied.value.status, denied.value.code) == (401, 20003)

"""ACTIVATION_MODE, keys and base URLs (R7, R12): dry-run is the default and calls nothing; a
live run with a key missing fails before any request, naming the variable, never its value."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from activations.channels.base import DryRunChannel
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.dispatch import dispatch
from activations.messages import WebhookMessage
from activations.settings import (
    MissingSettingError,
    ProviderSettings,
    build_channel,
    parse_mode,
    webhook_settings,
)
from tests.fakes import FakeSendGrid, FakeTwilio, FakeWebhookReceiver
from tests.fakes.scenario import plan, planned_emails, planned_sms, render_email, render_sms

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _env(
    fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio, **overrides: str | None
) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "SENDGRID_API_KEY": fake_sendgrid.api_key,
        "SENDGRID_API_HOST": fake_sendgrid.url,
        "SENDGRID_FROM_EMAIL": "shop@example.com",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "TWILIO_FROM_NUMBER": "+15550000000",
    }
    env.update(overrides)
    return env


def test_mode_is_dry_run_unless_explicitly_live() -> None:
    assert parse_mode(None) == parse_mode("") == parse_mode(" dry_run ") == "dry_run"
    assert parse_mode("LIVE") == "live"
    with pytest.raises(ValueError, match="ACTIVATION_MODE must be 'dry_run' or 'live', not 'prod'"):
        parse_mode("prod")


def test_dry_run_makes_zero_calls_even_to_configured_providers(
    con, tmp_path: Path, fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio
) -> None:
    # Any request reaching a fake now is a violation that fails the test at teardown.
    fake_sendgrid.refuse_all = fake_twilio.refuse_all = True
    settings = ProviderSettings.from_env(_env(fake_sendgrid, fake_twilio))
    assert settings.mode == "dry_run"
    plan(con, planned_emails(1200))
    plan(con, planned_sms(30))
    email = build_channel("email", settings)
    sms = build_channel("sms", settings)
    assert isinstance(email, DryRunChannel) and isinstance(sms, DryRunChannel)
    email_report = dispatch(
        con, campaign="newsletter", channel=email, render=render_email, consent="none"
    )
    sms_report = dispatch(con, campaign="sms_promo", channel=sms, render=render_sms, consent="none")
    assert (email_report.accepted, sms_report.accepted) == (1200, 30)
    assert fake_sendgrid.requests == [] and fake_twilio.requests == []
    assert dict(
        con.execute("select status, count(*) from activation.sends group by 1").fetchall()
    ) == {"planned": 1230}


@pytest.mark.parametrize(
    ("channel", "unset", "named"),
    [
        ("email", "SENDGRID_API_KEY", "SENDGRID_API_KEY"),
        ("email", "SENDGRID_FROM_EMAIL", "SENDGRID_FROM_EMAIL"),
        ("sms", "TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
        ("sms", "TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
        ("sms", "TWILIO_FROM_NUMBER", "TWILIO_FROM_NUMBER"),
    ],
)
def test_live_run_with_a_missing_key_fails_before_any_request(
    con, fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio, channel: str, unset: str, named: str
) -> None:
    fake_sendgrid.refuse_all = fake_twilio.refuse_all = True
    env = _env(fake_sendgrid, fake_twilio, ACTIVATION_MODE="live", **{unset: None})
    settings = ProviderSettings.from_env(env)
    with pytest.raises(MissingSettingError, match=named) as error:
        build_channel(channel, settings)
    present = [v for k, v in env.items() if v and ("KEY" in k or "TOKEN" in k)]
    assert not any(value in str(error.value) for value in present)
    assert fake_sendgrid.requests == [] and fake_twilio.requests == []


def test_webhook_and_ad_list_name_their_own_variables(tmp_path: Path) -> None:
    settings = ProviderSettings.from_env({"ACTIVATION_MODE": "live"})
    hook = webhook_settings(
        {"PUSH_URL": "https://push.example.com/hook"}, url_env="PUSH_URL", secret_env="PUSH_SECRET"
    )
    with pytest.raises(MissingSettingError, match="PUSH_SECRET"):
        build_channel("webhook", settings, webhook=hook)
    with pytest.raises(MissingSettingError, match="AD_LIST_DIR"):
        build_channel("ad_list", settings)
    with pytest.raises(MissingSettingError, match="AD_API_TOKEN"):
        build_channel(
            "ad_list",
            ProviderSettings.from_env(
                {
                    "ACTIVATION_MODE": "live",
                    "AD_LIST_DIR": str(tmp_path),
                    "AD_API_URL": "https://ads.example.com/v1",
                }
            ),
        )


@pytest.mark.parametrize(
    ("name", "url", "problem"),
    [
        ("SENDGRID_API_HOST", "http://api.sendgrid.example.com", "https outside loopback"),
        ("SENDGRID_API_HOST", "ftp://127.0.0.1", "http(s) URL"),
        ("TWILIO_API_BASE_URL", "https://user:pw@api.twilio.com", "must not embed credentials"),
        ("AD_API_URL", "not a url", "http(s) URL"),
    ],
)
def test_base_urls_are_checked_naming_the_variable(name: str, url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=name) as error:
        ProviderSettings.from_env({name: url})
    assert problem in str(error.value)


def test_settings_never_show_secrets_in_their_repr(
    fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio
) -> None:
    env = _env(
        fake_sendgrid,
        fake_twilio,
        SENDGRID_API_KEY="SG.secret-canary",
        TWILIO_AUTH_TOKEN="tw-secret-canary",
    )
    text = repr(ProviderSettings.from_env(env))
    assert "secret-canary" not in text and "SENDGRID" not in text


def test_live_run_from_settings_delivers_each_planned_message_exactly_once(
    con, fake_sendgrid: FakeSendGrid, fake_twilio: FakeTwilio, fake_webhook: FakeWebhookReceiver
) -> None:
    env = _env(
        fake_sendgrid,
        fake_twilio,
        ACTIVATION_MODE="live",
        PUSH_URL=f"{fake_webhook.url}/push",
        PUSH_SECRET=fake_webhook.secret,
    )
    settings = ProviderSettings.from_env(env)
    sends = planned_emails(3210, holdout_every=10)
    plan(con, sends)
    channel = build_channel("email", settings)
    assert isinstance(channel, SendGridEmailChannel)
    report = dispatch(
        con, campaign="newsletter", channel=channel, render=render_email, consent="none"
    )
    expected = Counter(s.send_id for s in sends if not s.is_holdout)
    assert Counter(fake_sendgrid.received_send_ids()) == expected and report.accepted == len(
        expected
    )

    hook = webhook_settings(env, url_env="PUSH_URL", secret_env="PUSH_SECRET", destination="push")
    webhook = build_channel("webhook", settings, webhook=hook)
    plan(
        con,
        [
            s.__class__(
                **{
                    **s.__dict__,
                    "campaign": "push",
                    "channel": "webhook",
                    "address": None,
                    "send_id": "p" + s.send_id[1:],
                }
            )
            for s in planned_emails(5)
        ],
    )
    pushed = dispatch(
        con,
        campaign="push",
        channel=webhook,
        consent="none",
        render=lambda r: WebhookMessage(r.send_id, r.campaign, r.variant, {}),
    )
    assert pushed.accepted == 5 and len(fake_webhook.processed_send_ids()) == 5

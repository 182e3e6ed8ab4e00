"""Rendering ledger rows into messages: autoescaping, strict variables, unsubscribe tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from activations.messages import EmailMessage, SendRow, SmsMessage, WebhookMessage, make_send_id
from activations.render import (
    MAX_SMS_CHARS,
    Renderer,
    TemplateRenderError,
    verify_unsubscribe_token,
)
from activations.spec import TEMPLATES_DIR, ActivationSettings
from tests.activations._campaign_helpers import campaign, write_templates

SETTINGS = ActivationSettings(unsubscribe_base_url="https://shop.example.com/u")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_templates(tmp_path_factory.mktemp("templates"))


def _row(context: dict[str, Any], *, channel: str = "email", variant: str = "default") -> SendRow:
    send_id = make_send_id("aud_test", "C000001", "2026-03-02", variant)
    address = {"email": "ann@example.com", "sms": "+8613800000001"}.get(channel)
    return SendRow(
        send_id=send_id,
        campaign="aud_test",
        customer_id="C000001",
        occasion="2026-03-02",
        variant=variant,
        channel=channel,
        address=address,
        context=context,
        attempt=0,
    )


def test_email_has_subject_html_text_and_a_verifiable_unsubscribe_link(templates: Path) -> None:
    message = Renderer(SETTINGS).render(
        campaign(templates), _row({"first_name": "Ann", "last_name": "Lee", "email": "x"})
    )
    assert isinstance(message, EmailMessage)
    assert (message.to_email, message.to_name, message.subject) == (
        "ann@example.com",
        "Ann Lee",
        "Hello Ann",
    )
    assert "<p>Hi Ann</p>" in message.html
    assert message.text.startswith("Hi Ann\n")
    [url] = [line.split(": ", 1)[1] for line in message.text.splitlines() if "Unsubscribe" in line]
    assert url.startswith("https://shop.example.com/u/")
    assert f'href="{url}"' in message.html
    token = url.rsplit("/", 1)[1]
    assert verify_unsubscribe_token(token, SETTINGS.unsubscribe_secret) == message.send_id
    # The token carries no PII and cannot be forged or moved to another send.
    assert "ann" not in token.lower() and "C000001" not in token
    assert verify_unsubscribe_token(token, "another-secret") is None
    other = make_send_id("aud_test", "C000002", "2026-03-02", "default")
    assert verify_unsubscribe_token(other + token[32:], SETTINGS.unsubscribe_secret) is None
    assert verify_unsubscribe_token("garbage", SETTINGS.unsubscribe_secret) is None


def test_malicious_first_name_is_escaped_in_html_only(templates: Path) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    message = Renderer(SETTINGS).render(
        campaign(templates), _row({"first_name": evil, "email": "x"})
    )
    assert "<script>" not in message.html and "<img src=x" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
    # The text part is plain text: shown as typed, never interpreted.
    assert message.text.startswith(f"Hi {evil}")


def test_subject_is_one_line(templates: Path) -> None:
    message = Renderer(SETTINGS).render(
        campaign(templates), _row({"first_name": "Ann\r\nBcc: evil@example.com", "email": "x"})
    )
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject == "Hello Ann Bcc: evil@example.com"


def test_missing_variable_names_the_template_and_variable(templates: Path) -> None:
    broken = campaign(
        templates,
        columns=("customer_id", "email", "first_name", "favourite_colour"),
        template="broken",
    )
    with pytest.raises(TemplateRenderError) as raised:
        # The YAML declared favourite_colour, but the audience row does not carry it.
        Renderer(SETTINGS).render(broken, _row({"first_name": "Ann"}))
    message = str(raised.value)
    assert "campaign aud_test, template broken/body.html" in message
    assert "'favourite_colour' is undefined" in message
    assert "first_name" in message  # what is available


def test_variant_subject_file_and_fixed_subject(templates: Path) -> None:
    tested = campaign(
        templates,
        variants=[
            {"name": "a", "weight": 0.5, "subject_file": "subject_b.txt"},
            {"name": "b", "weight": 0.5, "subject": "Spring sale"},
        ],
    )
    renderer = Renderer(SETTINGS)
    first = renderer.render(tested, _row({"first_name": "Ann"}, variant="a"))
    second = renderer.render(tested, _row({"first_name": "Ann"}, variant="b"))
    assert (first.subject, second.subject) == ("B for Ann", "Spring sale")


def test_sms_text_and_length_limit(templates: Path) -> None:
    sms = campaign(
        templates, columns=("customer_id", "phone", "first_name"), channel="sms", template="text"
    )
    message = Renderer(SETTINGS).render(sms, _row({"first_name": "Ann"}, channel="sms"))
    assert isinstance(message, SmsMessage)
    assert message.to_phone == "+8613800000001"
    assert message.body == "Hi Ann, news for you. Reply STOP to opt out"
    with pytest.raises(TemplateRenderError, match=f"limited to {MAX_SMS_CHARS}"):
        Renderer(SETTINGS).render(sms, _row({"first_name": "A" * MAX_SMS_CHARS}, channel="sms"))


def test_webhook_payload_is_the_audience_row(templates: Path) -> None:
    hook = campaign(
        templates,
        columns=("customer_id", "tier"),
        channel="webhook",
        template=None,
        consent="push",
        webhook={"url_env": "CRM_WEBHOOK_URL", "secret_env": "CRM_WEBHOOK_SECRET"},
    )
    message = Renderer(SETTINGS).render(hook, _row({"tier": "gold"}, channel="webhook"))
    assert isinstance(message, WebhookMessage)
    assert message.payload["data"] == {"tier": "gold"}
    assert message.payload["customer_id"] == "C000001"
    assert "unsubscribe_url" not in message.payload["data"]


def test_sandbox_blocks_unsafe_template_code(tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path,
        {
            "evil/subject.txt": "{{ first_name.__class__.__mro__ }}",
            "evil/body.html": "x",
            "evil/body.txt": "x",
        },
    )
    evil = campaign(templates, template="evil")
    with pytest.raises(TemplateRenderError, match=r"evil/subject\.txt"):
        Renderer(SETTINGS).render(evil, _row({"first_name": "Ann"}))


def test_shipped_layout_carries_unsubscribe_and_postal_address() -> None:
    layout = (TEMPLATES_DIR / "_layout" / "email.html").read_text()
    footer = (TEMPLATES_DIR / "_layout" / "footer.txt").read_text()
    for text in (layout, footer):
        assert "{{ unsubscribe_url }}" in text
        assert "Example Road" in text
    for folder in TEMPLATES_DIR.iterdir():
        if (folder / "body.html").exists():
            assert '{% extends "_layout/email.html" %}' in (folder / "body.html").read_text()
            assert '{% include "_layout/footer.txt" %}' in (folder / "body.txt").read_text()
        if (folder / "sms.txt").exists():
            assert "STOP" in (folder / "sms.txt").read_text()

"""The signed JSON webhook and the hashed ad-list export (R11: raw PII never leaves)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re

import duckdb
import pytest

from activations import ledger
from activations.channels.ad_list import AdListChannel, member_from_row
from activations.channels.webhook import WebhookChannel
from activations.dispatch import dispatch
from activations.messages import PlannedSend, WebhookMessage, make_send_id
from tests.fakes import FakeAdApi, FakeWebhookReceiver, status, timeout
from tests.fakes.scenario import plan

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]

NOW = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _sends(count: int, channel: str, campaign: str, context) -> list[PlannedSend]:
    return [
        PlannedSend(
            send_id=make_send_id(campaign, f"c{i:05d}", "2026-11-20", "a"),
            campaign=campaign,
            customer_id=f"c{i:05d}",
            occasion="2026-11-20",
            variant="a",
            channel=channel,
            is_holdout=False,
            address=None,
            context=context(i),
        )
        for i in range(count)
    ]


def _push(row) -> WebhookMessage:
    return WebhookMessage(
        row.send_id, row.campaign, row.variant, {"title": "Back in stock", **row.context}
    )


def test_webhook_posts_are_signed_and_carry_an_idempotency_key(
    con, fake_webhook: FakeWebhookReceiver
) -> None:
    sends = _sends(25, "webhook", "push", lambda i: {"device": f"d{i}"})
    plan(con, sends)
    channel = WebhookChannel(url=f"{fake_webhook.url}/push", secret=fake_webhook.secret)
    report = dispatch(con, campaign="push", channel=channel, render=_push, consent="none")
    assert report.accepted == 25
    assert fake_webhook.processed_send_ids() == {s.send_id for s in sends}
    body = fake_webhook.processed[sends[0].send_id]
    assert body == {
        "id": sends[0].send_id,
        "campaign": "push",
        "variant": "a",
        "data": {"title": "Back in stock", "device": "d0"},
    }


def test_unknown_webhook_deliveries_are_retried_next_run_and_deduplicated_by_the_key(
    con, fake_webhook: FakeWebhookReceiver
) -> None:
    sends = _sends(6, "webhook", "push", lambda i: {})
    plan(con, sends)
    fake_webhook.script(status(502, accept=True), timeout(0.5, accept=True), status(500))
    channel = WebhookChannel(
        url=f"{fake_webhook.url}/push", secret=fake_webhook.secret, timeout_s=0.25
    )
    first = dispatch(con, campaign="push", channel=channel, render=_push, consent="none", now=NOW)
    fake_webhook.wait_idle()
    assert (first.accepted, first.unknown) == (3, 3)
    # The receiver deduplicates on Idempotency-Key, so the next run need not wait a day.
    second = dispatch(
        con,
        campaign="push",
        channel=channel,
        render=_push,
        consent="none",
        now=NOW + dt.timedelta(minutes=5),
    )
    assert (second.released_for_retry, second.accepted) == (3, 3)
    assert fake_webhook.processed_send_ids() == {s.send_id for s in sends}
    assert set(fake_webhook.duplicates().values()) == {2} and len(fake_webhook.duplicates()) == 2
    assert ledger.status_counts(con, "push") == {"accepted": 6}


def test_ad_list_uploads_and_files_hold_only_sha256(con, tmp_path, fake_ad_api: FakeAdApi) -> None:
    canary_email = "Canary.Person+ads@Example.COM "
    sends = _sends(
        12_345,
        "ad_list",
        "lookalike",
        lambda i: {
            "email": canary_email if i == 0 else f"p{i}@example.com",
            "phone": f"+4915100{i:05d}" if i % 2 else None,
        },
    )
    plan(con, sends)
    channel = AdListChannel(
        out_dir=tmp_path / "exports",
        platform="meta",
        api_url=fake_ad_api.members_url,
        api_token="fake-ad-token",
    )
    report = dispatch(
        con, campaign="lookalike", channel=channel, render=member_from_row, consent="none"
    )
    assert report.accepted == 12_345 and report.requests == 2
    assert len(fake_ad_api.users) == 12_345
    assert all(HEX64.match(v) for user in fake_ad_api.users for v in user.values())
    expected = hashlib.sha256(b"canary.person+ads@example.com").hexdigest()
    assert {"email_sha256": expected} in fake_ad_api.users
    meta_phone = hashlib.sha256(b"491510000001").hexdigest()
    assert any(u.get("phone_sha256") == meta_phone for u in fake_ad_api.users)
    exported = "".join(p.read_text() for p in channel.files)
    assert "@" not in exported and "+49" not in exported and "Canary" not in exported
    rows = [r for p in channel.files for r in csv.DictReader(p.open())]
    assert len(rows) == 12_345
    assert all(HEX64.match(v) for r in rows for v in r.values() if v)
    sent = json.dumps([json.loads(r.body) for r in fake_ad_api.requests])
    assert "canary" not in sent.lower() and "example.com" not in sent


def test_ad_list_rows_without_a_usable_identifier_are_rejected(con, tmp_path) -> None:
    sends = _sends(
        3,
        "ad_list",
        "lookalike",
        lambda i: [{"email": "ok@example.com"}, {}, {"phone": "5551234"}][i],
    )
    plan(con, sends)
    channel = AdListChannel(out_dir=tmp_path / "exports", platform="google")
    report = dispatch(
        con, campaign="lookalike", channel=channel, render=member_from_row, consent="none"
    )
    assert (report.accepted, report.rejected) == (1, 2)
    errors = sorted(
        e
        for (e,) in con.execute(
            "select last_error from activation.sends where status = 'rejected'"
        ).fetchall()
    )
    assert errors == ["identifier could not be normalised", "no email or phone to match on"]


def test_ad_list_rows_of_suppressed_people_are_not_exported(con, tmp_path) -> None:
    sends = _sends(
        3,
        "ad_list",
        "lookalike",
        lambda i: {"email": f"p{i}@example.com", "phone": f"+4915100{i:05d}"},
    )
    plan(con, sends)
    ledger.add_suppression(
        con,
        channel="email",
        address="P1@example.com",
        customer_id=None,
        reason="unsubscribe",
        source="t",
    )
    ledger.add_suppression(
        con, channel="sms", address="+491510000002", customer_id=None, reason="sms_stop", source="t"
    )
    channel = AdListChannel(out_dir=tmp_path / "exports", platform="google")
    report = dispatch(
        con, campaign="lookalike", channel=channel, render=member_from_row, consent="none"
    )
    assert (report.accepted, report.suppressed) == (1, 2)

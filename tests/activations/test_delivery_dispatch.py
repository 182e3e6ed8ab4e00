"""Dispatch-time re-checks (R4) and run controls: consent withdrawn after planning, customer
suppressions, frequency caps, send windows, holdouts, budgets, render failures, dry-run, and
one rate-limited destination not stalling another."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass

import duckdb
import pytest

from activations import ledger
from activations.channels.base import DryRunChannel
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.channels.webhook import WebhookChannel
from activations.dispatch import DispatchError, dispatch
from activations.messages import WebhookMessage, make_send_id
from activations.ratelimit import RetryPolicy
from tests.fakes import FakeSendGrid, rate_limit, start_fake_webhook
from tests.fakes.scenario import consent_table, plan, planned_emails, render_email, statuses

# The fakes' fixtures check for violations at teardown.
pytest_plugins = ["tests.fakes.fixtures"]

NOW = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cap:
    max_messages: int
    per_days: int


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    yield connection
    connection.close()


def _channel(fake: FakeSendGrid, **options) -> SendGridEmailChannel:
    return SendGridEmailChannel(
        api_key="SG.fake-key", from_email="shop@example.com", host=fake.url, **options
    )


def test_consent_withdrawn_after_planning_is_honoured_at_dispatch(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    sends = planned_emails(10)
    plan(con, sends)
    customers = [s.customer_id for s in sends]
    # c00003 withdrew consent since the plan; c00009 was merged away (missing from the view).
    consent_table(con, customers[:9], without_email=["c00003"])
    report = dispatch(
        con, campaign="newsletter", channel=_channel(fake_sendgrid), render=render_email
    )
    assert (report.accepted, report.suppressed) == (8, 2)
    assert sends[3].send_id not in fake_sendgrid.received_send_ids()
    assert sends[9].send_id not in fake_sendgrid.received_send_ids()
    reason = con.execute(
        "select last_error from activation.sends where customer_id = 'c00003'"
    ).fetchone()[0]
    assert reason == "suppressed at dispatch: no has_email_consent in marts.dim_customers"


def test_consent_check_without_the_customer_view_fails_loudly(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(3))
    with pytest.raises(DispatchError, match=r"marts\.dim_customers does not exist"):
        dispatch(con, campaign="newsletter", channel=_channel(fake_sendgrid), render=render_email)
    assert fake_sendgrid.requests == []


def test_customer_level_and_erasure_suppressions_apply_to_every_channel(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    sends = planned_emails(4)
    plan(con, sends)
    ledger.add_suppression(
        con, channel="all", address=None, customer_id="c00001", reason="erasure", source="t"
    )
    ledger.add_suppression(
        con,
        channel="email",
        address="PERSON2@example.com ",
        customer_id=None,
        reason="bounce",
        source="t",
    )
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
    )
    assert (report.accepted, report.suppressed) == (2, 2)
    assert set(fake_sendgrid.received_send_ids()) == {sends[0].send_id, sends[3].send_id}
    errors = dict(con.execute("select customer_id, last_error from activation.sends").fetchall())
    assert errors["c00001"] == "suppressed at dispatch: erasure"
    assert errors["c00002"] == "suppressed at dispatch: bounce"


def test_frequency_cap_counts_messages_sent_since_planning(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(4, campaign="welcome"))
    plan(con, planned_emails(4, campaign="newsletter"))
    # Another campaign reached two of the same people after the newsletter was planned.
    dispatch(
        con,
        campaign="welcome",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        now=NOW,
        max_messages=2,
    )
    reached = {
        c
        for (c,) in con.execute(
            "select customer_id from activation.sends where campaign = 'welcome' and status = 'accepted'"
        ).fetchall()
    }
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        frequency_cap=Cap(max_messages=1, per_days=7),
        now=NOW + dt.timedelta(hours=1),
    )
    assert (report.accepted, report.capped) == (2, 2)
    capped = {
        c
        for (c,) in con.execute(
            "select customer_id from activation.sends where campaign = 'newsletter' and status = 'capped'"
        ).fetchall()
    }
    assert capped == reached and len(reached) == 2
    # A cap a week long no longer counts those messages eight days later.
    plan(con, planned_emails(4, campaign="newsletter", occasion="2026-11-28"))
    later = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        frequency_cap=Cap(max_messages=1, per_days=7),
        now=NOW + dt.timedelta(days=8, hours=2),
    )
    assert (later.accepted, later.capped) == (4, 0)


def test_a_closed_send_window_defers_and_a_later_run_sends(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    plan(con, planned_emails(5))
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        is_window_open=lambda at: 8 <= at.hour < 20,
        now=dt.datetime(2026, 11, 20, 23, tzinfo=dt.UTC),
    )
    assert report.deferred == 5 and fake_sendgrid.requests == []
    assert ledger.status_counts(con, "newsletter") == {"deferred": 5}
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        is_window_open=lambda at: 8 <= at.hour < 20,
        now=dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC),
    )
    assert report.accepted == 5


def test_holdouts_are_recorded_and_never_contacted(con, fake_sendgrid: FakeSendGrid) -> None:
    sends = planned_emails(20, holdout_every=4)
    plan(con, sends)
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
    )
    holdout = {s.send_id for s in sends if s.is_holdout}
    assert report.accepted == 15 and len(holdout) == 5
    assert not holdout & set(fake_sendgrid.received_send_ids())
    assert ledger.status_counts(con, "newsletter") == {"accepted": 15, "holdout": 5}


def test_budget_and_occasion_limit_what_a_run_sends(con, fake_sendgrid: FakeSendGrid) -> None:
    plan(con, planned_emails(10, occasion="2026-11-19") + planned_emails(10, occasion="2026-11-20"))
    report = dispatch(
        con,
        campaign="newsletter",
        channel=_channel(fake_sendgrid),
        render=render_email,
        consent="none",
        occasion="2026-11-20",
        max_messages=4,
        chunk_size=3,
    )
    assert report.accepted == 4
    by_occasion = Counter(con.execute("select occasion, status from activation.sends").fetchall())
    assert by_occasion == {
        ("2026-11-20", "accepted"): 4,
        ("2026-11-20", "planned"): 6,
        ("2026-11-19", "planned"): 10,
    }


def test_a_row_that_cannot_render_is_rejected_without_its_content(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    sends = planned_emails(3)
    plan(con, sends)

    def render(row):
        if row.customer_id == "c00001":
            raise KeyError(f"no column for {row.address}")
        return render_email(row)

    report = dispatch(
        con, campaign="newsletter", channel=_channel(fake_sendgrid), render=render, consent="none"
    )
    assert (report.accepted, report.rejected, report.render_failed) == (2, 0, 1)
    error = con.execute(
        "select last_error from activation.sends where customer_id = 'c00001'"
    ).fetchone()[0]
    assert error == "render failed: KeyError"


def test_dry_run_changes_nothing_and_reports_what_live_would_do(con) -> None:
    sends = planned_emails(2500)
    plan(con, sends)
    ledger.add_suppression(
        con,
        channel="email",
        address="person7@example.com",
        customer_id=None,
        reason="unsubscribe",
        source="t",
    )
    before = con.execute("select * from activation.sends order by send_id").fetchall()
    channel = DryRunChannel(channel="email", destination="sendgrid")
    report = dispatch(
        con, campaign="newsletter", channel=channel, render=render_email, consent="none"
    )
    assert report.dry_run and (report.accepted, report.suppressed) == (2499, 1)
    assert channel.batch_sizes == [1000, 1000, 499]
    assert con.execute("select * from activation.sends order by send_id").fetchall() == before


def test_one_rate_limited_destination_does_not_stall_another(
    con, fake_sendgrid: FakeSendGrid
) -> None:
    slow = start_fake_webhook()
    try:
        slow.script(rate_limit(600))
        plan(con, planned_emails(20))
        webhook_sends = [
            s.__class__(
                **{
                    **s.__dict__,
                    "campaign": "push",
                    "channel": "webhook",
                    "address": None,
                    "send_id": make_send_id("push", s.customer_id, s.occasion, "a"),
                }
            )
            for s in planned_emails(20)
        ]
        plan(con, webhook_sends)
        started = time.monotonic()
        webhook = WebhookChannel(
            url=f"{slow.url}/push",
            secret="fake-webhook-secret",
            retry_policy=RetryPolicy(max_wait_s=30),
        )
        push = dispatch(
            con,
            campaign="push",
            channel=webhook,
            render=lambda r: WebhookMessage(r.send_id, r.campaign, r.variant, {"title": "hi"}),
            consent="none",
        )
        email = dispatch(
            con,
            campaign="newsletter",
            channel=_channel(fake_sendgrid),
            render=render_email,
            consent="none",
        )
        assert time.monotonic() - started < 5
        assert push.halted and push.accepted == 0 and email.accepted == 20
        assert ledger.status_counts(con, "push") == {"planned": 20}
        slow.assert_no_violations()
    finally:
        slow.stop()


def test_rows_are_claimed_in_planning_order(con, fake_sendgrid: FakeSendGrid) -> None:
    early = planned_emails(3, campaign="trigger", occasion="t1")
    late = planned_emails(3, campaign="trigger", occasion="t2")
    plan(con, [s.__class__(**{**s.__dict__, "planned_at": NOW}) for s in late])
    plan(
        con,
        [s.__class__(**{**s.__dict__, "planned_at": NOW - dt.timedelta(hours=1)}) for s in early],
    )
    dispatch(
        con,
        campaign="trigger",
        channel=_channel(fake_sendgrid, max_batch_size=3),
        render=render_email,
        consent="none",
    )
    order = [d.send_id for d in fake_sendgrid.delivered]
    assert set(order[:3]) == {s.send_id for s in early}
    assert statuses(con, "trigger") == {s.send_id: "accepted" for s in early + late}

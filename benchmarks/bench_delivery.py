"""Delivery throughput and latency through the fake providers (not part of the tests).

Each fake runs in its own process (`tests.fakes.serve`), so the dispatcher does not share a
GIL with the server it measures. The ledger is a DuckDB file, as in production.

- emails/second: plan N emails, then one live dispatch through the official SendGrid client
  (1,000 personalizations per request, shared html with substitutions); the fake's count of
  delivered send_ids must equal N with no duplicate;
- the same for per-person html (one request per message) and for SMS through the official
  twilio client (one request per message), on smaller samples;
- event→dispatch latency: for single trigger events, the time from recording the planned
  send to SendGrid's 202 (what an event-driven run adds after its sensor fires).

    .venv/bin/python benchmarks/bench_delivery.py --emails 50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activations import ledger  # noqa: E402
from activations.channels.sendgrid_email import SendGridEmailChannel  # noqa: E402
from activations.channels.twilio_sms import TwilioSmsChannel  # noqa: E402
from activations.dispatch import dispatch  # noqa: E402
from activations.messages import EmailMessage, PlannedSend, make_send_id  # noqa: E402
from tests.fakes.scenario import planned_emails, planned_sms, render_email, render_sms  # noqa: E402
from tests.fakes.twilio import FakeTwilio  # noqa: E402


class Fake:
    def __init__(self, provider: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.serve", provider],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = json.loads(self.process.stdout.readline())["url"]

    def finish(self) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        summary = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return summary


def _sendgrid(url: str) -> SendGridEmailChannel:
    return SendGridEmailChannel(api_key="SG.fake-key", from_email="shop@example.com", host=url)


def bench_emails(workdir: Path, count: int, *, personal_html: bool) -> dict:
    fake = Fake("sendgrid")
    con = duckdb.connect(str(workdir / f"emails-{count}-{personal_html}.duckdb"))
    sends = planned_emails(count)
    started = time.perf_counter()
    ledger.record_plan(con, "bench-plan", sends)
    plan_s = time.perf_counter() - started

    def render(row):
        message = render_email(row)
        if not personal_html:
            return message
        return EmailMessage(
            **{
                **message.__dict__,
                "html": f"<p>Hello {row.context['first_name']}, your code is {row.customer_id}</p>",
                "substitutions": {},
            }
        )

    started = time.perf_counter()
    report = dispatch(
        con, campaign="newsletter", channel=_sendgrid(fake.url), render=render, consent="none"
    )
    dispatch_s = time.perf_counter() - started
    summary = fake.finish()
    con.close()
    assert summary["delivered"] == summary["unique_send_ids"] == count, summary
    assert summary["duplicates"] == 0 and not summary["violations"], summary
    return {
        "case": f"email, {'per-person html' if personal_html else 'shared html + substitutions'}",
        "messages": count,
        "requests": report.requests,
        "plan_s": round(plan_s, 2),
        "dispatch_s": round(dispatch_s, 2),
        "messages_per_s": round(count / dispatch_s),
        "delivered_exactly_once": True,
    }


def bench_sms(workdir: Path, count: int) -> dict:
    fake = Fake("twilio")
    defaults = FakeTwilio()
    con = duckdb.connect(str(workdir / "sms.duckdb"))
    ledger.record_plan(con, "bench-plan", planned_sms(count))
    channel = TwilioSmsChannel(
        account_sid=defaults.account_sid,
        auth_token=defaults.auth_token,
        from_number="+15550000000",
        api_base_url=fake.url,
        status_callback_url="https://hooks.example.com/twilio/status",
    )
    started = time.perf_counter()
    report = dispatch(con, campaign="sms_promo", channel=channel, render=render_sms, consent="none")
    seconds = time.perf_counter() - started
    summary = fake.finish()
    con.close()
    assert summary["unique_send_ids"] == summary["delivered"] == count, summary
    return {
        "case": "sms, one request per message",
        "messages": count,
        "requests": report.requests,
        "dispatch_s": round(seconds, 2),
        "messages_per_s": round(count / seconds),
        "delivered_exactly_once": True,
    }


def bench_latency(workdir: Path, events: int) -> dict:
    fake = Fake("sendgrid")
    con = duckdb.connect(str(workdir / "latency.duckdb"))
    ledger.ensure_ledger(con)
    channel = _sendgrid(fake.url)
    latencies = []
    for i in range(events):
        trigger_id = f"trigger-{i:05d}"
        customer = f"c{i:05d}"
        send = PlannedSend(
            send_id=make_send_id("first_purchase", customer, trigger_id, "a"),
            campaign="first_purchase",
            customer_id=customer,
            occasion=trigger_id,
            variant="a",
            channel="email",
            is_holdout=False,
            address=f"buyer{i}@example.com",
            context={"first_name": "Zoë"},
        )
        started = time.perf_counter()
        ledger.record_plan(con, f"event-{i}", [send])
        report = dispatch(
            con,
            campaign="first_purchase",
            channel=channel,
            render=render_email,
            consent="none",
            occasion=trigger_id,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        assert report.accepted == 1
    summary = fake.finish()
    con.close()
    assert summary["unique_send_ids"] == summary["delivered"] == events, summary
    latencies.sort()
    return {
        "case": "event -> dispatch (record plan, re-checks, in_flight commit, HTTP 202, outcome)",
        "events": events,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=50_000)
    parser.add_argument("--personal-emails", type=int, default=5_000)
    parser.add_argument("--sms", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    # DuckDB imports pandas on the first bound parameter; pay that once here, not inside a
    # measured stage.
    duckdb.connect().execute("select ?", [1]).fetchall()
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "duckdb": duckdb.__version__,
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 1),
            }
        )
    )
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        workdir = Path(tmp)
        for result in (
            bench_emails(workdir, args.emails, personal_html=False),
            bench_emails(workdir, args.personal_emails, personal_html=True),
            bench_sms(workdir, args.sms),
            bench_latency(workdir, args.events),
        ):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

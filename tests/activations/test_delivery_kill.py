"""R1 under kill -9: a live dispatch in a subprocess is SIGKILLed at random points (while the
fake is processing one of its requests, or at a random instant, which lands in DuckDB commits
too), then rerun in this process. Whatever the point, the fake received every send_id at most
once, and after reconciliation every planned send_id exactly once."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from activations import ledger
from activations.channels.sendgrid_email import SendGridEmailChannel
from activations.dispatch import dispatch
from activations.events import ingest_sendgrid_events
from tests.fakes import FakeSendGrid, start_fake_sendgrid
from tests.fakes.scenario import plan, planned_emails, render_email, statuses

ROOT = Path(__file__).resolve().parents[2]
SENDS = 240
BATCH = 10


def _start_worker(db: Path, fake: FakeSendGrid, worker: dict[str, int]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.dispatch_worker",
            str(db),
            fake.url,
            "newsletter",
            str(BATCH),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker["pid"] = process.pid
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", (
        process.stderr.read() if process.stderr else ""
    )
    return process


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("seed", range(8))
def test_kill_9_mid_dispatch_then_rerun_sends_each_message_exactly_once(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    db = tmp_path / "ledger.duckdb"
    sends = planned_emails(SENDS)
    with duckdb.connect(str(db)) as con:
        plan(con, sends)
    fake = start_fake_sendgrid()
    try:
        mode = ("after_accept", "before_accept", "timer")[seed % 3]
        target = rng.randrange(1, SENDS // BATCH - 1)
        worker: dict[str, int] = {}

        # Killed while the fake handles request `target`: before SendGrid "queues" it, or after
        # it queued it but before the 202 reaches the client (the duplicate hazard). Installed
        # before the worker starts, so no request can slip past it.
        def hook(request) -> None:
            if request.index == target:
                _kill(worker["pid"])

        if mode == "after_accept":
            fake.after_accept_hook = hook
        elif mode == "before_accept":
            fake.before_hook = hook
        process = _start_worker(db, fake, worker)
        if mode == "timer":
            time.sleep(rng.uniform(0.0, 0.6))
            _kill(process.pid)
        process.wait(timeout=30)
        # Not wait_idle: a request the worker wrote just before it died may still be in the
        # fake's socket buffer, and would be recorded during the rerun below as if the rerun
        # had sent it.
        fake.wait_disconnected()
        fake.before_hook = fake.after_accept_hook = None
        if mode != "timer":
            assert process.returncode == -signal.SIGKILL
        received_before = Counter(fake.received_send_ids())
        assert set(received_before.values()) <= {1}

        channel = SendGridEmailChannel(
            api_key="SG.fake-key", from_email="shop@example.com", host=fake.url
        )
        with duckdb.connect(str(db)) as con:
            # Rerun before any event arrived: rows that were in flight become unknown and are
            # held for reconciliation; only rows never attempted are sent.
            dispatch(
                con, campaign="newsletter", channel=channel, render=render_email, consent="none"
            )
            after_rerun = Counter(fake.received_send_ids())
            assert set(after_rerun.values()) <= {1}, fake.duplicates()
            held = {s for s, status in statuses(con, "newsletter").items() if status == "unknown"}
            assert not held & set(after_rerun - received_before)

            # The provider's events arrive; past the reconciliation window the rest is resent.
            ingest_sendgrid_events(con, fake.events())
            dispatch(
                con,
                campaign="newsletter",
                channel=channel,
                render=render_email,
                consent="none",
                now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
            )
            assert ledger.status_counts(con, "newsletter") == {"accepted": SENDS}
        assert Counter(fake.received_send_ids()) == Counter(s.send_id for s in sends), (
            fake.duplicates()
        )
    finally:
        fake.stop()

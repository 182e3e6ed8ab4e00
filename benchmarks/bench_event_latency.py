"""Event → dispatch latency of an event-triggered campaign through Dagster (not part of the tests).

On a copy of a built warehouse, a trigger row is written to `marts.fct_trigger_events` as the
trigger models would write it; the campaign's sensor logic finds it, and the campaign's job
(rebuild the audience with dbt, plan, guardrail, dispatch) runs in process, live, against the
fake SendGrid on 127.0.0.1. Latency = trigger row written → the fake accepted that message.
The daemon's sensor interval (15 s minimum; on average half of it is waited) comes on top and
is reported separately.

    .venv/bin/python benchmarks/bench_event_latency.py --warehouse data/demo/warehouse.duckdb
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAMPAIGN = "aud_first_purchase_thanks"
SENSOR_INTERVAL_S = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--warehouse", type=Path, required=True, help="a warehouse built by cdp run/demo"
    )
    parser.add_argument("--events", type=int, default=5)
    args = parser.parse_args()

    import dagster as dg
    import duckdb
    from dagster_duckdb import DuckDBResource

    from orchestration.defs.activation.assets import (
        activation_resource,
        build_campaign,
        campaigns_from_manifest,
        new_triggers,
    )
    from orchestration.defs.transform.assets import dbt_audiences, dbt_models
    from orchestration.defs.transform.project import dbt_resource
    from tests.fakes.sendgrid import start_fake_sendgrid

    work = Path(tempfile.mkdtemp(prefix="event_latency_"))
    warehouse = work / "warehouse.duckdb"  # views name their catalog after the file
    shutil.copy(args.warehouse, warehouse)
    fake = start_fake_sendgrid(api_key="SG.bench-key")
    os.environ.update(
        {
            "DUCKDB_PATH": str(warehouse),
            "ACTIVATION_MODE": "live",
            "SENDGRID_API_KEY": "SG.bench-key",
            "SENDGRID_API_HOST": fake.url,
            "SENDGRID_FROM_EMAIL": "shop@example.com",
            "UNSUBSCRIBE_BASE_URL": "https://shop.example.com/unsubscribe",
            "UNSUBSCRIBE_SIGNING_SECRET": "bench-unsubscribe-secret",
            "COUPON_SIGNING_SECRET": "bench-coupon-secret",
            "ACTIVATION_PREVIEW_DIR": str(work / "previews"),
        }
    )
    os.environ.pop("DAGSTER_HOME", None)

    campaign = {c.name: c for c in campaigns_from_manifest()}[CAMPAIGN]
    # Measured at any hour: the send window is opened all day, nothing else changes.
    window = dataclasses.replace(campaign.spec.send_window, start=dt.time.min, end=dt.time.max)
    campaign = dataclasses.replace(
        campaign, spec=dataclasses.replace(campaign.spec, send_window=window)
    )
    parts = build_campaign(campaign)
    audience_key = dg.AssetKey([campaign.schema, campaign.name])
    resources = {
        "duckdb": DuckDBResource(database=str(warehouse)),
        "activation": activation_resource(),
        "dbt": dbt_resource(),
    }

    with duckdb.connect(str(warehouse)) as con:
        candidates = con.execute(
            """select t.trigger_id from marts.fct_trigger_events t
               join marts.dim_customers c using (customer_id)
               where t.trigger_type = 'first_purchase' and c.has_email_consent and c.email is not null
               order by t.fired_at desc limit ?""",
            [args.events * 4],
        ).fetchall()
    cursor = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    latencies, job_seconds, sent = [], [], 0
    for (trigger_id,) in candidates:
        if len(latencies) >= args.events:
            break
        before = set(fake.received_send_ids())
        with duckdb.connect(str(warehouse)) as con:
            # The trigger models' output for a purchase that just happened.
            con.execute(
                """update marts.fct_trigger_events
                   set fired_at = now()::timestamp, recorded_at = now()::timestamp
                   where trigger_id = ?""",
                [trigger_id],
            )
        written = time.perf_counter()
        found, cursor = new_triggers(str(warehouse), "first_purchase", cursor)
        if trigger_id not in found:
            continue
        started = time.perf_counter()
        result = dg.materialize(
            # The audience is in one of the two dbt assets (an ML-independent one in dbt_models).
            [dbt_models, dbt_audiences, *parts["assets"], *parts["asset_checks"]],
            selection=dg.AssetSelection.assets(audience_key, *[a.key for a in parts["assets"]]),
            resources=resources,
            raise_on_error=False,
        )
        job_seconds.append(time.perf_counter() - started)
        new = set(fake.received_send_ids()) - before
        if not result.success or not new:
            print(
                f"trigger {trigger_id[:8]}: nothing sent (holdout, consent or cap)", file=sys.stderr
            )
            continue
        latencies.append(time.perf_counter() - written)
        sent += len(new)
    fake.stop()
    fake.assert_no_violations()

    figures = {
        "campaign": CAMPAIGN,
        "events_measured": len(latencies),
        "messages_sent": sent,
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_max_s": round(max(latencies), 2) if latencies else None,
        "job_p50_s": round(statistics.median(job_seconds), 2) if job_seconds else None,
        "sensor_wait_mean_s": SENSOR_INTERVAL_S / 2,
        "duplicates": fake.duplicates(),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Campaigns end to end through Dagster: generated data → `run_pipeline` (ingestion, dbt, ML,
audiences, every campaign's plan and dispatch in dry-run), then one campaign sent live through
the official SendGrid client to the fake SendGrid on 127.0.0.1.

- `cdp run` in dry-run leaves a preview for every campaign and no plan in the ledger;
- live, each planned message reaches the fake exactly once, and a rerun of the same day sends
  nothing more;
- the blocking guardrail stops a send whose audience collapsed, holds its messages, and an
  override tag on the next run releases and sends them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from tests.fakes.sendgrid import start_fake_sendgrid

ALWAYS_OPEN = {"start": dt.time.min, "end": dt.time.max}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import datagen
    from orchestration.runner import run_pipeline

    root = tmp_path_factory.mktemp("activation")
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    datagen.generate(str(root / "demo"), customers=1200, days=120, seed=5, end_date=yesterday)
    previews = root / "previews"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.delenv("ACTIVATION_MODE", raising=False)
        mp.setenv("ACTIVATION_PREVIEW_DIR", str(previews))
        mp.setenv("MODEL_DIR", str(root / "models"))
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        result = run_pipeline(root / "demo" / "landing", root / "warehouse.duckdb")
    failed = [f"{s.name}: {s.error}" for s in result.stages if not s.success]
    assert not failed, failed
    return {"root": root, "warehouse": root / "warehouse.duckdb", "previews": previews}


def _campaigns():
    from orchestration.defs.activation.assets import campaigns_from_manifest

    return {c.name: c for c in campaigns_from_manifest()}


def test_dry_run_pipeline_previews_every_campaign_and_records_no_plan(built) -> None:
    campaigns = _campaigns()
    assert len(campaigns) >= 8
    for name in campaigns:
        summary = json.loads((built["previews"] / name / "summary.json").read_text())
        assert summary["campaign"] == name
        assert (built["previews"] / name / "index.html").exists()
    assert (built["previews"] / "index.html").exists()
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        statuses = dict(
            con.execute("select status, count(*) from activation.sends group by status").fetchall()
        )
    # Dry-run plans are discarded once previewed: switching to live later sends none of them.
    assert statuses == {}


def test_audience_products_leave_out_purchases_and_put_the_customers_band_first(built) -> None:
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        [(rows, customers, recommended)] = con.execute(
            """
            select count(*), count(distinct customer_id),
                count(*) filter (where (customer_id, sku) in (
                    select (customer_id, sku) from ml.recommendations))
            from audiences.int_audience_recommendations
            """
        ).fetchall()
        assert rows > 0 and customers > 0 and recommended > 0
        [(bought,)] = con.execute(
            """
            select count(*) from audiences.int_audience_recommendations as r
            where exists (
                select 1 from marts.fct_order_lines as l
                where l.customer_id = r.customer_id and l.sku = r.sku and l.quantity > 0
            )
            """
        ).fetchall()
        assert bought == 0
        # Positions run 1..n (n <= 6) per customer, with no sku twice.
        [(gaps,)] = con.execute(
            """
            select count(*) from (
                select customer_id from audiences.int_audience_recommendations
                group by customer_id
                having max(position) <> count(*) or count(distinct sku) <> count(*)
                    or min(position) <> 1 or count(*) > 6
            )
            """
        ).fetchall()
        assert gaps == 0
        # Products in the customer's own price band come before the others, and within a band
        # class the model's recommendations come first, in the model's rank order.
        [(misordered,)] = con.execute(
            """
            with shown as (
                select
                    r.customer_id, r.position,
                    case when r.price_band = coalesce(c.price_band, 'mid') then 0 else 1 end
                        as band_class,
                    m.rank as model_rank
                from audiences.int_audience_recommendations as r
                join marts.dim_customers as c using (customer_id)
                left join ml.recommendations as m using (customer_id, sku)
            )
            select count(*) from shown as a
            join shown as b on a.customer_id = b.customer_id and a.position < b.position
            where a.band_class > b.band_class
                or (a.band_class = b.band_class and a.model_rank is null
                    and b.model_rank is not null)
                or (a.band_class = b.band_class and a.model_rank > b.model_rank)
            """
        ).fetchall()
        assert misordered == 0


def _live_env(mp: pytest.MonkeyPatch, fake_url: str) -> None:
    mp.setenv("ACTIVATION_MODE", "live")
    mp.setenv("SENDGRID_API_KEY", "SG.fake-key")
    mp.setenv("SENDGRID_API_HOST", fake_url)
    mp.setenv("SENDGRID_FROM_EMAIL", "shop@example.com")
    mp.setenv("UNSUBSCRIBE_BASE_URL", "https://shop.example.com/unsubscribe")
    mp.setenv("UNSUBSCRIBE_SIGNING_SECRET", "test-unsubscribe-secret")
    mp.setenv("COUPON_SIGNING_SECRET", "test-coupon-secret")


def _materialize(
    campaign, warehouse: Path, previews: Path, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    from orchestration.defs.activation.assets import activation_resource, build_campaign

    parts = build_campaign(campaign)
    return dg.materialize(
        [*parts["assets"], *parts["asset_checks"]],
        resources={
            "duckdb": DuckDBResource(database=str(warehouse)),
            "activation": activation_resource(),
        },
        tags=tags,
        raise_on_error=False,
    )


def _ledger(warehouse: Path, campaign: str) -> Counter:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return Counter(
            dict(
                con.execute(
                    "select status, count(*) from activation.sends where campaign = ? group by status",
                    [campaign],
                ).fetchall()
            )
        )


def _accepted(warehouse: Path, campaign: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return sorted(
            r[0]
            for r in con.execute(
                "select send_id from activation.sends where campaign = ? and status = 'accepted'",
                [campaign],
            ).fetchall()
        )


def test_live_send_exactly_once_then_guardrail_holds_and_override_releases(
    built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = _campaigns()["aud_newsletter_daily"]
    # The test may run at any hour and sends two "days" within seconds: open the send window
    # all day and lift the cooldown and frequency cap; everything else is the shipped spec.
    window = dataclasses.replace(base.spec.send_window, **ALWAYS_OPEN)
    spec = dataclasses.replace(
        base.spec,
        send_window=window,
        cooldown_days=None,
        frequency_cap=dataclasses.replace(base.spec.frequency_cap, max_messages=100),
    )
    campaign = dataclasses.replace(base, spec=spec)
    warehouse = built["warehouse"]
    day_one = {"dagster/scheduled_execution_time": "2030-01-01T06:00:00+00:00"}
    day_two = {"dagster/scheduled_execution_time": "2030-01-02T06:00:00+00:00"}

    fake = start_fake_sendgrid(api_key="SG.fake-key")
    try:
        _live_env(monkeypatch, fake.url)
        first = _materialize(campaign, warehouse, tmp_path, day_one)
        assert first.success, first.all_events
        received = fake.received_send_ids()
        assert len(received) > 20
        assert fake.duplicates() == {}
        assert sorted(received) == _accepted(warehouse, campaign.name)
        counts = _ledger(warehouse, campaign.name)
        assert counts["planned"] == counts["in_flight"] == counts["unknown"] == 0
        assert counts["holdout"] > 0  # recorded, never sent

        # Same day again (a retry or a rerun): every send_id is already in the ledger.
        again = _materialize(campaign, warehouse, tmp_path, day_one)
        assert again.success
        assert len(fake.received_send_ids()) == len(received)

        # The audience collapses to a fifth: the guardrail blocks day two's send.
        with duckdb.connect(str(warehouse)) as con:
            con.execute(
                "delete from audiences.aud_newsletter_daily where hash(customer_id) % 5 <> 0"
            )
        blocked = _materialize(campaign, warehouse, tmp_path, day_two)
        checks = blocked.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [False]
        materialized = {e.asset_key.path[-1] for e in blocked.get_asset_materialization_events()}
        assert materialized == {"plan"}  # dispatch never ran
        assert len(fake.received_send_ids()) == len(received)
        held = _ledger(warehouse, campaign.name)["held"]
        assert held > 0

        # A one-run override releases the held messages and sends them, once.
        overridden = _materialize(
            campaign,
            warehouse,
            tmp_path,
            {**day_two, "activation/guardrail_override": campaign.name},
        )
        assert overridden.success
        assert _ledger(warehouse, campaign.name)["held"] == 0
        assert len(fake.received_send_ids()) == len(received) + held
        assert fake.duplicates() == {}
    finally:
        fake.stop()
    fake.assert_no_violations()


def test_trigger_sensor_requests_one_run_per_batch_and_moves_its_cursor(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.defs.activation.assets import build_campaign

    monkeypatch.setenv("DUCKDB_PATH", str(built["warehouse"]))
    campaign = _campaigns()["aud_first_purchase_thanks"]
    [sensor] = build_campaign(campaign)["sensors"]

    first = sensor(dg.build_sensor_context(cursor=None))
    [request] = first.run_requests
    assert request.run_key.startswith(f"{campaign.name}:")
    assert int(request.tags["activation/triggers"]) > 0
    # Same cursor, same triggers: the same run key, which Dagster launches once.
    assert sensor(dg.build_sensor_context(cursor=None)).run_requests[0].run_key == request.run_key
    # Past the cursor there is nothing new.
    second = sensor(dg.build_sensor_context(cursor=first.cursor))
    assert isinstance(second, dg.SkipReason)


def test_spooled_unsubscribe_becomes_a_suppression(
    built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from activations.events import EventSpool
    from orchestration.defs.activation.assets import provider_events

    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        [(email,)] = con.execute(
            "select email from marts.dim_customers where has_email_consent and email is not null "
            "order by customer_id limit 1"
        ).fetchall()
    spool = EventSpool(tmp_path / "spool")
    event = {
        "email": email,
        "event": "unsubscribe",
        "sg_event_id": "evt-1",
        "timestamp": 1_790_000_000,
    }
    # SendGrid retries and duplicates: the same event twice is one suppression.
    spool.put("sendgrid", json.dumps([event]).encode())
    spool.put("sendgrid", json.dumps([event]).encode())
    monkeypatch.setenv("ACTIVATION_EVENT_SPOOL", str(spool.directory))

    result = dg.materialize(
        [provider_events], resources={"duckdb": DuckDBResource(database=str(built["warehouse"]))}
    )
    metadata = result.asset_materializations_for_node("activation__provider_events")[0].metadata
    assert (
        metadata["new"].value == 1
        and metadata["duplicates"].value + metadata["received"].value >= 2
    )
    assert spool.pending() == []
    from activations import ledger

    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        assert email in ledger.suppressed_addresses(con, "email")

"""Dry-run previews: files per sample and variant, counts, and every shipped campaign end to
end on generated data (ingestion → dbt → plan → preview)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from activations import ledger
from activations.plan import plan_campaign
from activations.preview import mask_address, write_previews
from activations.spec import ActivationSettings, load_campaigns
from tests.activations._campaign_helpers import (
    campaign,
    create_audience,
    create_customers,
    write_templates,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
DAY = NOW.date().isoformat()


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_previews_hold_samples_per_variant_and_the_counts(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    templates = write_templates(tmp_path / "templates")
    create_customers(con, 300, consent_every=3)
    create_audience(con, "aud_ab", 300)
    tested = campaign(
        templates,
        "aud_ab",
        holdout_share=0.2,
        variants=[
            {"name": "a", "weight": 0.5},
            {"name": "b", "weight": 0.5, "subject_file": "subject_b.txt"},
        ],
    )
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    out = tmp_path / "previews"
    index = write_previews(con, tested, report, out, sample=3)

    assert index == out / "aud_ab" / "index.html"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    samples = [f for f in files if f.startswith("aud_ab/a/") or f.startswith("aud_ab/b/")]
    assert len(samples) == 2 * 3 * 2  # 2 variants x 3 people x (.html + .txt)
    # File names carry only the opaque customer id.
    assert all(re.fullmatch(r"aud_ab/[ab]/C\d{6}\.(html|txt)", f) for f in samples), samples
    assert "index.html" in files and "aud_ab/summary.json" in files

    page = index.read_text()
    assert "DRY RUN" in page
    for label, count in (
        ("audience rows", 300),
        ("no consent", report.no_consent),
        ("holdout (recorded, never contacted)", report.holdout),
        ("planned to send", report.planned),
    ):
        assert f'<td>{label}</td><td class="n">{count:,}</td>' in page
    for variant, counts in report.by_variant.items():
        assert (
            f'<tr><td>{variant}</td><td class="n">{counts["treatment"]:,}</td>'
            f'<td class="n">{counts["holdout"]:,}</td></tr>'
        ) in page
    assert "first run" in page  # the guardrail's verdict
    # Addresses are masked on the pages; the rendered email itself is what the person gets.
    assert not re.search(r"person\d+@example\.com", page, re.IGNORECASE)
    assert "p***@example.com" in page
    b_text = next((out / "aud_ab" / "b").glob("*.txt")).read_text()
    assert b_text.startswith("Subject: B for Person")
    summary = json.loads((out / "aud_ab" / "summary.json").read_text())
    assert summary["counts"]["planned"] == report.planned
    assert summary["by_variant"] == report.by_variant
    top = (out / "index.html").read_text()
    assert '<a href="aud_ab/index.html">aud_ab</a>' in top
    assert "Nothing was sent" in top


def test_preview_reports_a_blocked_guardrail(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    templates = write_templates(tmp_path / "templates")
    create_customers(con, 100)
    create_audience(con, "aud_jump", 100)
    tested = campaign(templates, "aud_jump", holdout_share=0.0)
    ledger.start_run(con, run_id="last", campaign="aud_jump", occasion="2026-03-01")
    ledger.finish_run(con, run_id="last", status="succeeded", planned_count=10, holdout_count=0)
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    page = write_previews(con, tested, report, tmp_path / "previews").read_text()
    assert 'class="bad">blocked: the audience moved +900%' in page
    assert "blocked" in (tmp_path / "previews" / "index.html").read_text()


def test_sms_preview_and_address_masking(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    templates = write_templates(tmp_path / "templates")
    create_customers(con, 20)
    create_audience(
        con, "aud_sms", 20, extra="'+861380000' || lpad(cast(i as varchar), 4, '0') as phone"
    )
    tested = campaign(
        templates,
        "aud_sms",
        ("customer_id", "phone", "first_name"),
        channel="sms",
        template="text",
        holdout_share=0.0,
    )
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    write_previews(con, tested, report, tmp_path / "previews", sample=2)
    texts = list((tmp_path / "previews" / "aud_sms" / "default").glob("*.txt"))
    assert len(texts) == 2
    assert texts[0].read_text().endswith("Reply STOP to opt out\n")
    page = (tmp_path / "previews" / "aud_sms" / "index.html").read_text()
    assert "+861380000" not in page and "+86*******00" in page
    assert mask_address("ann@example.com") == "a***@example.com"
    assert mask_address("+8613800000001") == "+86*******0001"


# ---------------------------------------------------------------------------------------------
# every shipped campaign, on generated data

AS_OF = dt.date(2026, 3, 1)


def _dbt(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args],
        cwd=ROOT / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """Generated data loaded by the real loader, stand-in ML outputs, and the audiences built
    by dbt; returns (campaigns, dbt env, dbt vars). DuckDB has one writer, so connections are
    opened only between dbt runs."""
    from datagen import generate
    from orchestration.ingestion.contract import SOURCES
    from orchestration.ingestion.loader import load_partitions, partition_dates

    tmp = tmp_path_factory.mktemp("campaign_demo")
    generate(tmp / "gen", customers=1000, days=120, seed=11, end_date=AS_OF)
    landing = tmp / "gen" / "landing"
    warehouse = tmp / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for source in SOURCES:
            load_partitions(con, landing, source, partition_dates(landing, source))
        ledger.ensure_ledger(con)
    env = {
        **os.environ,
        "DUCKDB_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"),
    }
    # A longer event lookback than production's 7 days gives every trigger type a few rows
    # at this small scale.
    vars_ = json.dumps({"as_of_date": AS_OF.isoformat(), "audience_event_lookback_days": 60})
    # Everything upstream of the audiences first (run: their own tests belong to their own
    # suites), then what the ML assets would write from it (their tables and columns, simple
    # values), then the audiences and their tests over both.
    _dbt(
        ["run", "--select", "+audiences", "--exclude", "audiences", "--vars", vars_, "--quiet"],
        env,
    )
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists ml")
        con.execute(
            """
            create table ml.recommendations as
            select customers.customer_id, products.rank, products.sku, 1.0 / products.rank as score
            from marts.dim_customers as customers
            cross join (
                select sku, row_number() over (order by sku desc) as rank
                from staging.stg_catalog__products
            ) as products
            where products.rank <= 8
            """
        )
        con.execute(
            """
            create table ml.churn_scores as
            select customer_id, least(1.0, coalesce(days_since_last_order, 365) / 365.0) as score,
                'test' as model_version, timestamp '2026-03-01 00:00:00' as scored_at
            from marts.dim_customers
            """
        )
        con.execute(
            """
            create table ml.product_associations as
            select a.sku, b.sku as related_sku, count(*) / 100.0 as score
            from marts.fct_order_lines as a
            join marts.fct_order_lines as b on a.order_id = b.order_id and a.sku <> b.sku
            group by all
            """
        )
    _dbt(["build", "--select", "audiences", "--vars", vars_, "--quiet"], env)
    manifest = json.loads((tmp / "target" / "manifest.json").read_text())
    return load_campaigns(manifest), env, vars_


def test_every_example_campaign_previews_on_generated_data(demo, tmp_path: Path) -> None:
    campaigns, env, vars_ = demo
    by_name = {c.name: c for c in campaigns}
    assert set(by_name) == {
        "aud_newsletter_daily",
        "aud_winback_at_risk",
        "aud_first_purchase_thanks",
        "aud_birthday_high_value",
        "aud_repurchase_reminder",
        "aud_spend_spike_offer",
        "aud_cart_abandon",
        "aud_sms_followup",
    }
    out = tmp_path / "previews"
    settings = ActivationSettings()
    end_of_day = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    reports = {}
    con = duckdb.connect(env["DUCKDB_PATH"])
    for name in sorted(by_name, key=lambda n: n == "aud_sms_followup"):
        tested = by_name[name]
        if name == "aud_sms_followup":
            # It follows up the win-back email just planned; in a dry run, planned counts as
            # sent (the var cdp demo sets).
            preview_vars = json.dumps({**json.loads(vars_), "activation_preview_followups": True})
            con.close()
            _dbt(["build", "--select", "aud_sms_followup", "--vars", preview_vars, "--quiet"], env)
            con = duckdb.connect(env["DUCKDB_PATH"])
        now = end_of_day
        if tested.spec.is_event:
            # As a sensor tick would, just after the latest trigger of a reachable person.
            [(latest,)] = con.execute(
                f"select max(fired_at) from {tested.relation} "
                "where email is not null and has_email_consent"
            ).fetchall()
            assert latest is not None, f"{name}: no reachable triggers in the generated data"
            now = latest.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=10)
        report = plan_campaign(
            con,
            tested,
            occasion=AS_OF.isoformat(),
            run_id=f"test-{name}",
            now=now,
            settings=settings,
        )
        write_previews(con, tested, report, out, settings=settings)
        reports[name] = report
    con.close()

    for name, report in reports.items():
        assert report.planned > 0, (name, report.as_metadata())
        samples = list((out / name).rglob("C*.*"))
        assert samples, name
        assert (out / name / "index.html").exists()
    assert reports["aud_sms_followup"].budget_ranking == "churn_score_x_average_order_value"
    assert set(reports["aud_winback_at_risk"].by_variant) == {"discount", "miss_you"}
    top = (out / "index.html").read_text()
    assert all(f'href="{name}/index.html"' in top for name in by_name)

    # Real content, not placeholders: products with prices and images, codes, links.
    winback = next((out / "aud_winback_at_risk").rglob("C*.html")).read_text()
    assert re.search(r"WB-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", winback)
    assert "https://cdn.example.com/products/" in winback and "¥" in winback
    assert "/unsubscribe/" in winback
    newsletter = next((out / "aud_newsletter_daily").rglob("C*.txt")).read_text()
    assert newsletter.count("https://shop.example.com/p/") >= 4
    sms = next((out / "aud_sms_followup").rglob("C*.txt")).read_text()
    assert re.search(r"your code WB-\S+ for 15% off", sms) and "STOP" in sms
    cart = next((out / "aud_cart_abandon").rglob("C*.txt")).read_text()
    assert "Return to your cart" in cart

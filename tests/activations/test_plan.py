"""Planning on a real DuckDB file with the real ledger: who is held out, which variant, who is
excluded and why, and who is chosen under a budget."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import pytest

from activations import ledger
from activations.messages import PlannedSend, make_send_id
from activations.plan import PlanError, bucket, plan_campaign
from activations.render import TemplateRenderError
from tests.activations._campaign_helpers import (
    EMAIL_COLUMNS,
    campaign,
    create_audience,
    create_customers,
    write_templates,
)

NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
DAY = NOW.date().isoformat()
NEXT_DAY = (NOW.date() + dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _ledger(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, tuple]:
    """customer_id → (status, is_holdout, variant, occasion, send_id) of a campaign's rows."""
    rows = con.execute(
        "select customer_id, status, is_holdout, variant, occasion, send_id "
        "from activation.sends where campaign = ?",
        [name],
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _within(count: int, total: int, share: float) -> bool:
    """Within four standard deviations of a binomial(total, share): a failure is a bug, not
    bad luck (p < 1e-4)."""
    return abs(count - total * share) <= 4 * math.sqrt(total * share * (1 - share))


def test_holdout_is_deterministic_about_the_share_and_never_contacted(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 10_000)
    relation = create_audience(con, "aud_big", 10_000)
    tested = campaign(templates, "aud_big", holdout_share=0.2)

    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    rows = _ledger(con, "aud_big")
    held = {c for c, row in rows.items() if row[1]}
    planned = {c for c, row in rows.items() if not row[1]}
    assert report.audience_rows == 10_000 and report.relation == '"audiences"."aud_big"'
    assert (report.holdout, report.planned) == (len(held), len(planned))
    assert report.holdout + report.planned == 10_000
    assert _within(report.holdout, 10_000, 0.2), report.holdout
    assert not held & planned
    assert {row[0] for c, row in rows.items() if c in held} == {"holdout"}
    assert {row[0] for c, row in rows.items() if c in planned} == {"planned"}
    # SQL and Python agree on the bucket, so anyone can recompute who was held out.
    assert held == {c for c in rows if bucket("aud_big", c, "holdout") < 0.2}

    # Another occasion (a later run): the same people are held out.
    plan_campaign(con, tested, occasion=NEXT_DAY, run_id="r2", now=NOW, audience_relation=relation)
    next_day = con.execute(
        "select customer_id from activation.sends where campaign = 'aud_big' "
        "and occasion = ? and is_holdout",
        [NEXT_DAY],
    ).fetchall()
    assert {c for (c,) in next_day} == held

    # Another campaign draws its own holdout: overlap is chance, not the same people.
    other = campaign(templates, "aud_other", holdout_share=0.2)
    plan_campaign(con, other, occasion=DAY, run_id="r3", now=NOW, audience_relation=relation)
    other_held = {c for c, row in _ledger(con, "aud_other").items() if row[1]}
    assert _within(len(held & other_held), 10_000, 0.04)


def test_variants_follow_weights_and_stay_with_the_person(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 10_000)
    create_audience(con, "aud_ab", 10_000)
    tested = campaign(
        templates,
        "aud_ab",
        holdout_share=0.0,
        variants=[
            {"name": "a", "weight": 0.5},
            {"name": "b", "weight": 0.3},
            {"name": "c", "weight": 0.2},
        ],
    )
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert {name: counts["holdout"] for name, counts in report.by_variant.items()} == {
        "a": 0,
        "b": 0,
        "c": 0,
    }
    for name, weight in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert _within(report.by_variant[name]["treatment"], 10_000, weight), report.by_variant
    rows = _ledger(con, "aud_ab")
    for customer_id, (_, _, variant, occasion, send_id) in list(rows.items())[:500]:
        u = bucket("aud_ab", customer_id, "variant")
        assert variant == ("a" if u < 0.5 else "b" if u < 0.8 else "c")
        assert send_id == make_send_id("aud_ab", customer_id, occasion, variant)
    plan_campaign(con, tested, occasion=NEXT_DAY, run_id="r2", now=NOW)
    again = con.execute(
        "select customer_id, variant from activation.sends where campaign = 'aud_ab' "
        "and occasion = ?",
        [NEXT_DAY],
    ).fetchall()
    assert {c: v for c, v in again} == {c: row[2] for c, row in rows.items()}


def _accepted(
    con: duckdb.DuckDBPyConnection, customers: list[str], sent_at: dt.datetime, times: int = 1
) -> None:
    """Messages of another email campaign that went out to `customers` at `sent_at`."""
    sends = [
        PlannedSend(
            send_id=make_send_id("aud_earlier", c, f"{sent_at:%Y-%m-%d}#{n}", "default"),
            campaign="aud_earlier",
            customer_id=c,
            occasion=f"{sent_at:%Y-%m-%d}#{n}",
            variant="default",
            channel="email",
            is_holdout=False,
            address=f"{c}@example.com",
        )
        for c in customers
        for n in range(times)
    ]
    ledger.record_plan(con, "earlier", sends)
    con.execute(
        "update activation.sends set status = 'accepted', sent_at = ? "
        "where campaign = 'aud_earlier' and sent_at is null",
        [sent_at.replace(tzinfo=None)],
    )


def test_consent_suppressions_and_frequency_caps_exclude_at_plan_time(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 100, consent_every=2)  # even customers consented
    create_audience(con, "aud_rules", 100)
    # Suppressions match on the normalised address, whatever case it was stored in.
    for customer, reason in (("C000002", "unsubscribe"), ("C000004", "bounce")):
        ledger.add_suppression(
            con,
            channel="email",
            address=f"PERSON{int(customer[1:])}@example.com",
            customer_id=customer,
            reason=reason,
            source="test",
        )
    ledger.add_suppression(
        con,
        channel="all",
        address="person6@example.com",
        customer_id="C000006",
        reason="erasure",
        source="test",
    )
    # A person-level block with no address: matched on customer_id, as dispatch does.
    ledger.add_suppression(
        con, channel="email", address=None, customer_id="C000008", reason="manual", source="test"
    )
    # An SMS STOP does not stop email.
    ledger.add_suppression(
        con,
        channel="sms",
        address="+8613800000018",
        customer_id="C000018",
        reason="sms_stop",
        source="test",
    )
    # Two emails in the last 7 days reach the cap of 2; two emails 10 days ago do not.
    _accepted(con, ["C000010", "C000012"], NOW - dt.timedelta(days=1), times=2)
    _accepted(con, ["C000014"], NOW - dt.timedelta(days=10), times=2)
    _accepted(con, ["C000016"], NOW - dt.timedelta(days=2), times=1)

    tested = campaign(
        templates,
        "aud_rules",
        holdout_share=0.0,
        frequency_cap={"max_messages": 2, "per_days": 7},
    )
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert report.consent_source == "marts.dim_customers"
    assert (
        report.audience_rows,
        report.no_consent,
        report.suppressed,
        report.capped,
        report.planned,
    ) == (100, 50, 4, 2, 44)
    planned = set(_ledger(con, "aud_rules"))
    assert len(planned) == 44
    assert not planned & {f"C{i:06d}" for i in range(1, 100, 2)}  # no consent
    assert not planned & {"C000002", "C000004", "C000006", "C000008", "C000010", "C000012"}
    assert {"C000014", "C000016", "C000018"} <= planned

    # An audience that carries its own consent flag is trusted over the customer view.
    create_audience(con, "aud_own_consent", 10, extra="i < 3 as has_email_consent")
    own = campaign(templates, "aud_own_consent", (*EMAIL_COLUMNS,), holdout_share=0.0)
    report = plan_campaign(con, own, occasion=DAY, run_id="r2", now=NOW)
    assert report.consent_source == "audience"
    # C000002's unsubscribe (above) holds for every campaign on the channel.
    assert (report.no_consent, report.suppressed, report.planned) == (7, 1, 2)


def test_rerun_of_an_occasion_plans_the_same_messages_after_delivery(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 50)
    create_audience(con, "aud_daily", 50)
    tested = campaign(
        templates, "aud_daily", holdout_share=0.2, frequency_cap={"max_messages": 1, "per_days": 2}
    )
    first = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert (first.planned_new, first.already_planned) == (50, 0)
    con.execute(
        "update activation.sends set status = 'accepted', sent_at = ? "
        "where campaign = 'aud_daily' and not is_holdout",
        [NOW.replace(tzinfo=None)],
    )
    rerun = plan_campaign(con, tested, occasion=DAY, run_id="r2", now=NOW + dt.timedelta(hours=1))
    # The messages already sent do not count against their own occasion's cap.
    assert (rerun.planned, rerun.holdout, rerun.capped) == (first.planned, first.holdout, 0)
    assert (rerun.planned_new, rerun.already_planned) == (0, 50)
    # The next day, everyone who got yesterday's message is within the cap of 1 per 2 days.
    tomorrow = plan_campaign(
        con, tested, occasion=NEXT_DAY, run_id="r3", now=NOW + dt.timedelta(days=1)
    )
    assert (tomorrow.capped, tomorrow.planned) == (first.planned, 0)
    assert tomorrow.holdout == first.holdout


def test_dry_run_counts_what_recording_would_and_writes_nothing(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 400)
    create_audience(con, "aud_dry", 400)
    tested = campaign(templates, "aud_dry", holdout_share=0.25)
    # An earlier run planned the first half of the audience for the same occasion.
    create_audience(con, "aud_dry_first_half", 200)
    plan_campaign(
        con,
        tested,
        occasion=DAY,
        run_id="r0",
        now=NOW,
        audience_relation="audiences.aud_dry_first_half",
    )
    ledger_before = con.execute("select * from activation.sends order by send_id").fetchall()
    assert len(ledger_before) == 200

    dry = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW, record=False)
    assert (
        con.execute("select * from activation.sends order by send_id").fetchall() == ledger_before
    )
    assert (dry.planned_new, dry.already_planned) == (200, 200)

    recorded = plan_campaign(con, tested, occasion=DAY, run_id="r2", now=NOW)
    assert len(_ledger(con, "aud_dry")) == 400
    for field in (
        "audience_rows",
        "planned",
        "holdout",
        "capped",
        "suppressed",
        "no_address",
        "planned_new",
        "already_planned",
        "by_variant",
    ):
        assert getattr(dry, field) == getattr(recorded, field), field
    assert [s.send_id for s in dry.samples] == [s.send_id for s in recorded.samples]


def test_dry_run_refuses_what_recording_refuses(con: duckdb.DuckDBPyConnection) -> None:
    ledger.ensure_ledger(con)
    twice = """
        select 's1' as send_id, 'c' as campaign, 'C1' as customer_id, 'd' as occasion,
            'default' as variant, false as is_holdout, 'a@example.com' as address,
            '{}' as context
        from range(2)
    """
    no_address = twice.replace("'a@example.com'", "null").replace("range(2)", "range(1)")
    for query, problem in ((twice, "appears twice"), (no_address, "needs an address")):
        with pytest.raises(ValueError, match=problem):
            ledger.count_plan_query(con, query, {}, channel="email")
        with pytest.raises(ValueError, match=problem):
            ledger.record_plan_query(con, "r1", query, {}, channel="email", planned_at=NOW)
    assert con.execute("select count(*) from activation.sends").fetchone() == (0,)


def test_cooldown_skips_people_this_campaign_contacted_recently(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 20)
    create_audience(con, "aud_weekly", 20)
    tested = campaign(
        templates,
        "aud_weekly",
        holdout_share=0.0,
        cooldown_days=28,
        frequency_cap={"max_messages": 10, "per_days": 7},
    )
    plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    week_later = NOW + dt.timedelta(days=7)
    again = plan_campaign(
        con, tested, occasion=week_later.date().isoformat(), run_id="r2", now=week_later
    )
    assert (again.capped, again.planned) == (20, 0)
    month_later = NOW + dt.timedelta(days=29)
    later = plan_campaign(
        con, tested, occasion=month_later.date().isoformat(), run_id="r3", now=month_later
    )
    assert later.planned == 20


@pytest.mark.parametrize(
    ("extra", "ranking", "rank_key"),
    [
        ("cast(i as double) as expected_value", "expected_value", lambda i: -i),
        (
            "(i % 10) / 10.0 as churn_score, cast(i as double) as average_order_value",
            "churn_score_x_average_order_value",
            lambda i: (-(i % 10) / 10 * i, i),
        ),
        ("", "audience_order", lambda i: i),
    ],
    ids=["expected_value", "churn x aov", "audience order"],
)
def test_budget_spends_on_the_highest_expected_value(
    con: duckdb.DuckDBPyConnection, templates: Path, extra: str, ranking: str, rank_key
) -> None:
    create_customers(con, 1000)
    create_audience(con, "aud_budget", 1000, extra=extra)
    columns = (*EMAIL_COLUMNS, *(["expected_value"] if "expected_value" in extra else []))
    tested = campaign(
        templates, "aud_budget", columns, holdout_share=0.2, budget=5, cost_per_message=0.05
    )
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert report.budget_ranking == ranking
    assert report.planned == 100  # 5 / 0.05 messages
    assert report.over_budget == 1000 - 100 - report.holdout

    # Walk everyone best first: a treatment row costs a message; a holdout row is kept while
    # budget remains, so the control group comes from the same ranked prefix.
    expected_treatment, expected_holdout = set(), set()
    for i in sorted(range(1000), key=rank_key):
        if len(expected_treatment) == 100:
            break
        customer = f"C{i:06d}"
        if bucket("aud_budget", customer, "holdout") < 0.2:
            expected_holdout.add(customer)
        else:
            expected_treatment.add(customer)
    rows = _ledger(con, "aud_budget")
    assert {c for c, row in rows.items() if not row[1]} == expected_treatment
    assert {c for c, row in rows.items() if row[1]} == expected_holdout


def test_event_campaign_sends_once_per_recent_trigger(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 10)
    con.execute("create schema if not exists audiences")
    con.execute(
        """
        create table audiences.aud_thanks as
        select * from (values
            ('T1', 'C000001', 'c1@example.com', 'Ann', timestamp '2026-03-02 05:00:00'),
            ('T2', 'C000001', 'c1@example.com', 'Ann', timestamp '2026-03-01 12:00:00'),
            ('T3', 'C000002', 'c2@example.com', 'Bob', timestamp '2026-02-20 12:00:00')
        ) as t(trigger_id, customer_id, email, first_name, fired_at)
        """
    )
    tested = campaign(
        templates,
        "aud_thanks",
        (*EMAIL_COLUMNS, "trigger_id", "fired_at"),
        trigger={"event": "first_purchase", "max_age_hours": 48},
        holdout_share=0.0,
        frequency_cap={"max_messages": 5, "per_days": 7},
    )
    report = plan_campaign(con, tested, occasion="sensor-tick-1", run_id="r1", now=NOW)
    assert (report.audience_rows, report.stale_events, report.planned) == (3, 1, 2)
    occasions = con.execute(
        "select occasion, send_id from activation.sends where campaign = 'aud_thanks' order by 1"
    ).fetchall()
    assert [o for o, _ in occasions] == ["T1", "T2"]
    assert occasions[0][1] == make_send_id("aud_thanks", "C000001", "T1", "default")
    # The next sensor tick plans nothing new for the same triggers.
    again = plan_campaign(con, tested, occasion="sensor-tick-2", run_id="r2", now=NOW)
    assert (again.planned_new, again.already_planned) == (0, 2)


def test_bad_occasion_keys_and_columns_fail_clearly(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 5)
    create_audience(con, "aud_bad", 5)
    tested = campaign(templates, "aud_bad")
    with pytest.raises(PlanError, match="occasion is the run date YYYY-MM-DD"):
        plan_campaign(con, tested, occasion="2026-03-02T06:00", run_id="r", now=NOW)
    with pytest.raises(PlanError, match="naive"):
        plan_campaign(con, tested, occasion=DAY, run_id="r", now=NOW.replace(tzinfo=None))
    con.execute("insert into audiences.aud_bad select * from audiences.aud_bad limit 2")
    with pytest.raises(PlanError, match="2 duplicate customer_id value"):
        plan_campaign(con, tested, occasion=DAY, run_id="r", now=NOW)
    con.execute(
        "create table audiences.aud_no_email as select customer_id from marts.dim_customers"
    )
    with pytest.raises(PlanError, match="lacks column"):
        plan_campaign(
            con,
            tested,
            occasion=DAY,
            run_id="r",
            now=NOW,
            audience_relation="audiences.aud_no_email",
        )
    with pytest.raises(PlanError, match="does not exist"):
        plan_campaign(
            con, tested, occasion=DAY, run_id="r", now=NOW, audience_relation="audiences.nope"
        )


def test_template_reading_a_missing_column_fails_before_anything_is_recorded(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 5)
    create_audience(con, "aud_colour", 5)
    # The YAML declares favourite_colour, but the SQL does not produce it.
    tested = campaign(
        templates, "aud_colour", (*EMAIL_COLUMNS, "favourite_colour"), template="broken"
    )
    with pytest.raises(
        TemplateRenderError, match=r"broken/body\.html: 'favourite_colour' is undefined"
    ):
        plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert _ledger(con, "aud_colour") == {}


def test_coupons_are_issued_to_the_treatment_group_only(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    create_customers(con, 200)
    create_audience(con, "aud_coupon", 200)
    tested = campaign(
        templates,
        "aud_coupon",
        template="coupon",
        holdout_share=0.3,
        coupon={"prefix": "WB", "value": "15% off", "valid_days": 14},
    )
    dry = plan_campaign(con, tested, occasion=DAY, run_id="r0", now=NOW, record=False)
    assert con.execute("select count(*) from activation.coupons").fetchone() == (0,)
    assert _ledger(con, "aud_coupon") == {}
    report = plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW)
    assert report.coupons_issued == report.planned
    assert (dry.coupons_issued, dry.planned, dry.planned_new) == (
        report.coupons_issued,
        report.planned,
        report.planned_new,
    )
    # The dry run's samples showed the codes the recorded plan issued.
    assert [s.context["coupon_code"] for s in dry.samples] == [
        s.context["coupon_code"] for s in report.samples
    ]
    contexts = con.execute(
        "select is_holdout, context from activation.sends where campaign = 'aud_coupon'"
    ).fetchall()
    treatment = [json.loads(c) for h, c in contexts if not h]
    assert all(c["coupon_code"].startswith("WB-") for c in treatment)
    assert all(c["coupon_valid_until"] == "2026-03-16" for c in treatment)
    assert all("coupon_code" not in json.loads(c) for h, c in contexts if h)
    [(issued,)] = con.execute("select count(*) from activation.coupons").fetchall()
    assert issued == report.planned
    # Samples render with the very codes that were recorded.
    recorded = {json.loads(c)["coupon_code"] for h, c in contexts if not h}
    assert {s.context["coupon_code"] for s in report.samples} <= recorded


def test_every_recorded_context_is_the_audience_row_whether_rendered_or_not(
    con: duckdb.DuckDBPyConnection, templates: Path
) -> None:
    # Rows past the samples keep DuckDB's JSON text (not parsed in Python); it must hold the
    # same values as the parsed contexts of the sample rows, unicode and numbers included.
    create_customers(con, 300)
    create_audience(
        con,
        "aud_context",
        300,
        extra="'Zoë ' || cast(i as varchar) as nickname, cast(i as decimal(10, 2)) / 4 as spend",
    )
    tested = campaign(templates, "aud_context", holdout_share=0.0)
    plan_campaign(con, tested, occasion=DAY, run_id="r1", now=NOW, batch_size=64)
    stored = con.execute(
        "select customer_id, context::varchar from activation.sends where campaign = 'aud_context'"
    ).fetchall()
    expected = {
        row[0]: row
        for row in con.execute(
            "select customer_id, email, first_name, nickname, spend from audiences.aud_context"
        ).fetchall()
    }
    assert len(stored) == 300
    for customer_id, context in stored:
        fields = json.loads(context)
        _, email, first_name, nickname, spend = expected[customer_id]
        assert fields["email"] == email and fields["first_name"] == first_name
        assert fields["nickname"] == nickname and fields["nickname"].startswith("Zoë")
        assert fields["spend"] == pytest.approx(float(spend))


def test_record_plan_takes_a_context_as_a_dict_or_as_json_not_both(
    con: duckdb.DuckDBPyConnection,
) -> None:
    send = PlannedSend(
        send_id=make_send_id("aud_json", "C1", DAY, "default"),
        campaign="aud_json",
        customer_id="C1",
        occasion=DAY,
        variant="default",
        channel="email",
        is_holdout=False,
        address="c1@example.com",
        context={"first_name": "Ann"},
        context_json='{"first_name": "Ann"}',
    )
    with pytest.raises(ValueError, match="not both"):
        ledger.record_plan(con, "r1", [send])

"""Campaign specs from dbt manifests: every bad field is named with its model and path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from activations.spec import (
    ActivationSettings,
    ActivationSpecError,
    SendWindow,
    cron_problem,
    load_campaigns,
)
from tests.activations._campaign_helpers import (
    EMAIL_COLUMNS,
    activation,
    manifest,
    node,
    write_templates,
)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_templates(tmp_path_factory.mktemp("templates"))


def _problems(templates: Path, *nodes: dict[str, Any]) -> list[str]:
    with pytest.raises(ActivationSpecError) as raised:
        load_campaigns(manifest(*nodes), templates_dir=templates)
    return list(raised.value.problems)


def test_full_spec_parses(templates: Path) -> None:
    block = activation(
        holdout_share=0.2,
        cooldown_days=28,
        budget=10_000,
        cost_per_message=0.05,
        variants=[
            {"name": "a", "weight": 0.5},
            {"name": "b", "weight": 0.3, "subject_file": "subject_b.txt"},
            {"name": "c", "weight": 0.2, "subject": "Fixed subject", "params": {"tone": "warm"}},
        ],
        guardrail={"max_change_share": 0.3, "max_audience": 500_000},
        coupon={"prefix": "WB", "value": 15, "valid_days": 14},
    )
    [campaign] = load_campaigns(manifest(node("aud_full", block)), templates_dir=templates)
    spec = campaign.spec
    assert (campaign.name, campaign.relation, campaign.key_column) == (
        "aud_full",
        '"audiences"."aud_full"',
        "customer_id",
    )
    assert (spec.channel, spec.template, spec.schedule, spec.event) == (
        "email",
        "plain",
        "0 6 * * *",
        None,
    )
    assert spec.consent == "email"
    assert spec.max_messages_by_budget == 200_000
    assert [v.name for v in spec.variants] == ["a", "b", "c"]
    assert spec.variant("c").params_dict == {"tone": "warm"}
    assert spec.coupon is not None and spec.coupon.value == "15"
    assert spec.guardrail.max_change_share == 0.3
    assert spec.send_window.timezone == "Asia/Shanghai"
    assert spec.cooldown_days == 28


def test_event_spec_defaults_and_meta_outside_config(templates: Path) -> None:
    block = activation(trigger={"event": "first_purchase"})
    columns = (*EMAIL_COLUMNS, "trigger_id", "fired_at")
    # dbt versions before 1.10 put meta on the node itself rather than under config.
    [campaign] = load_campaigns(
        manifest(node("aud_event", block, columns, meta_in_config=False)),
        templates_dir=templates,
    )
    assert campaign.spec.event == "first_purchase"
    assert campaign.key_column == "trigger_id"
    assert campaign.spec.event_max_age_hours == 48
    # Event batches vary by design: no relative guardrail unless asked for.
    assert campaign.spec.guardrail.max_change_share is None
    assert [v.name for v in campaign.spec.variants] == ["default"]


BAD_SPECS = [
    # (id, overrides, field path, words the message must contain)
    ("unknown channel", {"channel": "fax"}, "channel", "email, sms, webhook, ad_list"),
    ("unknown field", {"holdout_shar": 0.1}, "holdout_shar", "unknown field"),
    ("no trigger", {"trigger": None}, "trigger", "is required"),
    (
        "both triggers",
        {"trigger": {"schedule": "0 6 * * *", "event": "first_purchase"}},
        "trigger",
        "exactly one",
    ),
    ("cron 4 fields", {"trigger": {"schedule": "0 6 * *"}}, "trigger.schedule", "5"),
    ("cron hour 24", {"trigger": {"schedule": "0 24 * * *"}}, "trigger.schedule", "0-23"),
    ("cron bad step", {"trigger": {"schedule": "*/0 * * * *"}}, "trigger.schedule", "step"),
    ("unknown event", {"trigger": {"event": "payday"}}, "trigger.event", "cart_abandoned"),
    (
        "max age on a schedule",
        {"trigger": {"schedule": "0 6 * * *", "max_age_hours": 3}},
        "trigger.max_age_hours",
        "event",
    ),
    ("holdout too big", {"holdout_share": 0.95}, "holdout_share", "[0, 0.9]"),
    ("holdout missing", {"holdout_share": None}, "holdout_share", "is required"),
    ("holdout as text", {"holdout_share": "10%"}, "holdout_share", "number"),
    (
        "cap zero",
        {"frequency_cap": {"max_messages": 0, "per_days": 7}},
        "frequency_cap.max_messages",
        ">= 1",
    ),
    ("cap missing", {"frequency_cap": None}, "frequency_cap", "max_messages"),
    (
        "window bad time",
        {"send_window": {"start": "8am", "end": "21:00", "timezone": "UTC"}},
        "send_window.start",
        "HH:MM",
    ),
    (
        "window unquoted time",
        # YAML 1.1 reads 20:00 unquoted as the sexagesimal number 1200.
        {"send_window": {"start": "08:00", "end": 1200, "timezone": "UTC"}},
        "send_window.end",
        "quote",
    ),
    (
        "window bad zone",
        {"send_window": {"start": "08:00", "end": "21:00", "timezone": "Mars/Olympus"}},
        "send_window.timezone",
        "IANA",
    ),
    (
        "window empty",
        {"send_window": {"start": "08:00", "end": "08:00", "timezone": "UTC"}},
        "send_window",
        "empty",
    ),
    ("budget alone", {"budget": 100}, "cost_per_message", "both or neither"),
    ("negative cost", {"budget": 100, "cost_per_message": -1}, "cost_per_message", "positive"),
    (
        "weights do not sum",
        {"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]},
        "variants",
        "sum to 1",
    ),
    (
        "duplicate variant",
        {"variants": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]},
        "variants[1].name",
        "duplicate",
    ),
    ("bad variant name", {"variants": [{"name": "A B", "weight": 1}]}, "variants[0].name", "lower"),
    (
        "missing subject file",
        {"variants": [{"name": "a", "weight": 1, "subject_file": "nope.txt"}]},
        "variants[0].subject_file",
        "no file",
    ),
    ("bad guardrail", {"guardrail": {"max_change_share": -0.5}}, "guardrail.max_change_share", ""),
    ("bad max audience", {"guardrail": {"max_audience": 0}}, "guardrail.max_audience", ">= 1"),
    (
        "bad coupon prefix",
        {"coupon": {"prefix": "wb", "value": "15% off", "valid_days": 14}},
        "coupon.prefix",
        "upper-case",
    ),
    (
        "coupon without days",
        {"coupon": {"prefix": "WB", "value": "15% off"}},
        "coupon.valid_days",
        ">= 1",
    ),
    ("unknown template", {"template": "nope"}, "template", "available"),
    ("no template for email", {"template": None}, "template", "is required"),
    (
        "template without text body",
        {"channel": "sms"},
        "template",
        "sms.txt",
    ),
    (
        "webhook with a url value",
        {
            "channel": "webhook",
            "template": None,
            "consent": "push",
            "webhook": {"url_env": "https://crm.example.com/hook", "secret_env": "CRM_SECRET"},
        },
        "webhook.url_env",
        "NAME of an environment variable",
    ),
    (
        "webhook without consent",
        {
            "channel": "webhook",
            "template": None,
            "webhook": {"url_env": "CRM_URL", "secret_env": "CRM_SECRET"},
        },
        "consent",
        "is required",
    ),
    (
        "ad list platform",
        {"channel": "ad_list", "template": None, "consent": "email", "ad_list": {"platform": "tv"}},
        "ad_list.platform",
        "google, meta, x",
    ),
    ("cooldown zero", {"cooldown_days": 0}, "cooldown_days", ">= 1"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_bad_spec_names_model_and_field(
    templates: Path, overrides: dict[str, Any], field: str, words: str
) -> None:
    problems = _problems(templates, node("aud_winback_at_risk", activation(**overrides)))
    matching = [p for p in problems if f"meta.activation.{field}:" in p]
    assert matching, problems
    assert all(p.startswith("aud_winback_at_risk (models/audiences/") for p in problems)
    assert words in matching[0], matching[0]


def test_every_problem_of_every_model_is_reported_at_once(templates: Path) -> None:
    problems = _problems(
        templates,
        node("aud_one", activation(channel="fax", holdout_share=2)),
        node("aud_two", activation(send_window={"start": "8", "end": "9", "timezone": "X"})),
        node("aud_three", activation()),  # valid: not reported
    )
    assert sum(p.startswith("aud_one ") for p in problems) == 2
    assert sum(p.startswith("aud_two ") for p in problems) == 3
    assert not any(p.startswith("aud_three ") for p in problems)
    with pytest.raises(ActivationSpecError, match="5 invalid activation specs"):
        load_campaigns(
            manifest(
                node("aud_one", activation(channel="fax", holdout_share=2)),
                node(
                    "aud_two", activation(send_window={"start": "8", "end": "9", "timezone": "X"})
                ),
            ),
            templates_dir=templates,
        )


def test_activation_outside_audiences_folder_is_refused(templates: Path) -> None:
    [problem] = _problems(templates, node("dim_customers", activation(), folder="marts"))
    assert problem.startswith("dim_customers (models/marts/dim_customers.sql)")
    assert "models/audiences/" in problem


@pytest.mark.parametrize(
    ("overrides", "columns", "missing"),
    [
        ({}, ("customer_id", "first_name"), "email"),
        ({"channel": "sms", "template": "text"}, ("customer_id", "email"), "phone"),
        (
            {"trigger": {"event": "cart_abandoned"}},
            ("customer_id", "email", "first_name"),
            "trigger_id, fired_at",
        ),
    ],
    ids=["email needs email", "sms needs phone", "event needs trigger_id"],
)
def test_required_columns_must_be_declared(
    templates: Path, overrides: dict[str, Any], columns: tuple[str, ...], missing: str
) -> None:
    problems = _problems(templates, node("aud_cols", activation(**overrides), columns))
    assert any(p.startswith("aud_cols ") and f"must declare {missing}" in p for p in problems), (
        problems
    )


def test_template_variables_must_be_declared_columns(templates: Path) -> None:
    problems = _problems(templates, node("aud_colour", activation(template="broken")))
    assert problems == [
        "aud_colour (models/audiences/_audiences__models.yml): template broken/body.html reads "
        "favourite_colour, which the audience does not declare as columns"
    ]
    # A coupon template without a coupon block: the hint says why.
    problems = _problems(templates, node("aud_code", activation(template="coupon")))
    assert any("(the campaign has no coupon block)" in p for p in problems), problems


def test_columns_may_not_shadow_renderer_variables(templates: Path) -> None:
    problems = _problems(templates, node("aud_shadow", activation(), (*EMAIL_COLUMNS, "variant")))
    assert any("variant clash" in p for p in problems), problems


@pytest.mark.parametrize(
    "expression",
    ["0 2 * * *", "*/15 * * * *", "0 9-17/2 * * mon-fri", "30 6 1,15 jan,jul *", "0 0 * * 7"],
)
def test_valid_cron(expression: str) -> None:
    assert cron_problem(expression) is None


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "0 2 * *",
        "0 2 * * * *",
        "60 * * * *",
        "* * 0 * *",
        "* * * 13 *",
        "5-1 * * * *",
        "a * * * *",
    ],
)
def test_invalid_cron(expression: str) -> None:
    assert cron_problem(expression)


def test_send_window_in_its_time_zone_and_across_midnight() -> None:
    day = SendWindow(start=dt.time(8), end=dt.time(21), timezone="Asia/Shanghai")
    # 00:30 UTC is 08:30 in Shanghai.
    assert day.contains(dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC))
    assert not day.contains(dt.datetime(2026, 3, 2, 13, 30, tzinfo=dt.UTC))  # 21:30 local
    assert day.next_open(dt.datetime(2026, 3, 2, 13, 30, tzinfo=dt.UTC)) == dt.datetime(
        2026, 3, 3, 0, 0, tzinfo=dt.UTC
    )
    night = SendWindow(start=dt.time(22), end=dt.time(2), timezone="UTC")
    assert night.contains(dt.datetime(2026, 3, 2, 23, 0, tzinfo=dt.UTC))
    assert night.contains(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC))
    assert not night.contains(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC))
    with pytest.raises(ValueError, match="naive"):
        day.contains(dt.datetime(2026, 3, 2, 9, 0))


def test_settings_default_to_dry_run_and_live_needs_real_secrets() -> None:
    assert ActivationSettings.from_env({}).mode == "dry_run"
    with pytest.raises(ValueError, match="UNSUBSCRIBE_SIGNING_SECRET and COUPON_SIGNING_SECRET"):
        ActivationSettings.from_env({"ACTIVATION_MODE": "live"})
    with pytest.raises(ValueError, match="UNSUBSCRIBE_BASE_URL"):
        ActivationSettings.from_env(
            {
                "ACTIVATION_MODE": "live",
                "UNSUBSCRIBE_SIGNING_SECRET": "s1",
                "COUPON_SIGNING_SECRET": "s2",
            }
        )
    live = ActivationSettings.from_env(
        {
            "ACTIVATION_MODE": "LIVE",
            "UNSUBSCRIBE_SIGNING_SECRET": "canary-secret-1",
            "COUPON_SIGNING_SECRET": "canary-secret-2",
            "UNSUBSCRIBE_BASE_URL": "https://shop.example.com/u",
        }
    )
    assert live.is_live
    assert "canary-secret" not in repr(live)
    with pytest.raises(ValueError, match="'dry_run' or 'live'"):
        ActivationSettings(mode="production")

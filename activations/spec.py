"""Campaign specs: an audience model's `meta.activation`, parsed and validated.

An analyst adds a campaign by writing `models/audiences/aud_<name>.sql` and giving the model a
`config.meta.activation` block in its YAML. `load_campaigns(manifest)` turns every such block
into a `Campaign` when definitions load; anything wrong is reported at once, every problem
naming the model, the field path and what is allowed, so a typo fails the code location
rather than a 2 a.m. send.

This module is pure (no dagster import): the orchestration layer calls it with the manifest.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activations.messages import CHANNELS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# The trigger types `marts.fct_trigger_events` fires (its `trigger_type` column).
TRIGGER_TYPES: tuple[str, ...] = (
    "spend_spike",
    "dormancy_warning",
    "first_purchase",
    "second_purchase",
    "birthday_upcoming",
    "cart_abandoned",
    "entered_at_risk",
    "high_value_new_customer",
)
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "none")
AD_PLATFORMS: tuple[str, ...] = ("google", "meta", "x")
# Files a template folder must hold for each channel; every HTML email has a text alternative.
TEMPLATE_FILES: dict[str, tuple[str, ...]] = {
    "email": ("subject.txt", "body.html", "body.txt"),
    "sms": ("sms.txt",),
}
# Column that carries the address each channel sends to.
ADDRESS_COLUMNS: dict[str, str | None] = {
    "email": "email",
    "sms": "phone",
    "webhook": None,
    "ad_list": None,
}
# Names the renderer puts into every template's context; an audience column may not reuse them
# (it would be silently shadowed), except customer_id, which is the same value.
RENDERER_VARIABLES: frozenset[str] = frozenset(
    {
        "send_id",
        "campaign",
        "variant",
        "variant_params",
        "occasion",
        "unsubscribe_url",
        "subject",
    }
)
COUPON_VARIABLES: frozenset[str] = frozenset(
    {"coupon_code", "coupon_value", "coupon_valid_from", "coupon_valid_until"}
)

DEFAULT_EVENT_MAX_AGE_HOURS = 48
DEFAULT_MAX_CHANGE_SHARE = 0.5
MAX_HOLDOUT_SHARE = 0.9

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COUPON_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class ActivationSpecError(ValueError):
    """One or more campaign specs are invalid; `problems` lists each as one line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        header = f"{count} invalid activation spec{'s' if count != 1 else ''} in the dbt project:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class FrequencyCap:
    max_messages: int
    per_days: int


@dataclass(frozen=True)
class SendWindow:
    """Local hours in which messages may go out; `end` before `start` spans midnight."""

    start: dt.time
    end: dt.time
    timezone: str

    def contains(self, at: dt.datetime) -> bool:
        """Whether the aware instant `at` falls inside the window, in the window's time zone."""
        local = _require_aware(at).astimezone(zoneinfo.ZoneInfo(self.timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """`at` if the window is open then, else the next local opening time (aware, UTC)."""
        if self.contains(at):
            return at
        tz = zoneinfo.ZoneInfo(self.timezone)
        local = _require_aware(at).astimezone(tz)
        opening = dt.datetime.combine(local.date(), self.start, tzinfo=tz)
        if opening <= local:
            opening = dt.datetime.combine(
                local.date() + dt.timedelta(days=1), self.start, tzinfo=tz
            )
        return opening.astimezone(dt.UTC)


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B/n test. Overrides of the campaign's content:

    - `subject_file`: a file in the template folder whose Jinja renders this arm's subject
      (dbt renders `{{ }}` inside YAML at parse time, so a personalised subject cannot be
      written inline in the model's meta);
    - `subject`: a fixed subject line (plain text);
    - `template`: another template folder;
    - `params`: free values templates read as `variant_params`.
    """

    name: str
    weight: float
    subject: str | None = None
    subject_file: str | None = None
    template: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Guardrail:
    # None disables the relative check (event campaigns by default: their batches vary by design).
    max_change_share: float | None = DEFAULT_MAX_CHANGE_SHARE
    max_audience: int | None = None


@dataclass(frozen=True)
class CouponSpec:
    prefix: str
    value: str
    valid_days: int


@dataclass(frozen=True)
class WebhookSpec:
    url_env: str
    secret_env: str


@dataclass(frozen=True)
class AdListSpec:
    platform: str


@dataclass(frozen=True)
class ActivationSpec:
    channel: str
    template: str | None
    schedule: str | None
    event: str | None
    holdout_share: float
    frequency_cap: FrequencyCap
    send_window: SendWindow
    consent: str
    variants: tuple[Variant, ...]
    guardrail: Guardrail
    event_max_age_hours: int | None = None
    # A person contacted by this campaign within this many days is not planned again (on top
    # of the channel-wide frequency cap): a weekly win-back should not chase the same people.
    cooldown_days: int | None = None
    budget: float | None = None
    cost_per_message: float | None = None
    coupon: CouponSpec | None = None
    webhook: WebhookSpec | None = None
    ad_list: AdListSpec | None = None

    @property
    def is_event(self) -> bool:
        return self.event is not None

    @property
    def max_messages_by_budget(self) -> int | None:
        if self.budget is None or self.cost_per_message is None:
            return None
        # A tiny epsilon keeps 10 / 0.05 at 200 despite binary floating point.
        return math.floor(self.budget / self.cost_per_message + 1e-9)

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"no variant {name!r}; variants are {[v.name for v in self.variants]}")


@dataclass(frozen=True)
class Campaign:
    """An audience model with a valid activation spec. `name` is the model name (for example
    `aud_winback_at_risk`); it is the campaign key in the ledger and in every send_id."""

    unique_id: str
    name: str
    schema: str
    relation_name: str
    spec: ActivationSpec
    columns: tuple[str, ...]
    description: str = ""
    # The manifest's own path to the YAML that declares the spec, for error messages.
    yaml_path: str | None = None
    # The template folders the spec was validated against, and rendered from.
    templates_dir: Path = TEMPLATES_DIR

    @property
    def relation(self) -> str:
        """`"schema"."name"` without the database: the catalog is named after the DuckDB file,
        which differs between copies of the warehouse."""
        return f'"{self.schema}"."{self.name}"'

    @property
    def key_column(self) -> str:
        return "trigger_id" if self.spec.is_event else "customer_id"

    @property
    def address_column(self) -> str | None:
        return ADDRESS_COLUMNS[self.spec.channel]


@dataclass(frozen=True)
class ActivationSettings:
    """How activations run here. Values come from the environment through the caller
    (Dagster resources read them with `dg.EnvVar`); this package never reads `os.environ`.

    Dry-run is the default: it renders previews and calls nothing. Live mode requires real
    signing secrets and a real unsubscribe URL (dev defaults are refused), so a misconfigured
    production run fails before anything is planned or sent.
    """

    mode: str = "dry_run"
    unsubscribe_base_url: str = "http://127.0.0.1:8000/unsubscribe"
    unsubscribe_signing_secret: str | None = None
    coupon_signing_secret: str | None = None
    currency_symbol: str = "¥"

    DEV_SECRET = "dev-only-not-secret"
    ENV_VARS = (
        "ACTIVATION_MODE",
        "UNSUBSCRIBE_BASE_URL",
        "UNSUBSCRIBE_SIGNING_SECRET",
        "COUPON_SIGNING_SECRET",
        "CURRENCY_SYMBOL",
    )

    def __post_init__(self) -> None:
        if self.mode not in ("dry_run", "live"):
            raise ValueError(f"ACTIVATION_MODE must be 'dry_run' or 'live', not {self.mode!r}")
        if self.mode == "live":
            missing = [
                name
                for name, value in (
                    ("UNSUBSCRIBE_SIGNING_SECRET", self.unsubscribe_signing_secret),
                    ("COUPON_SIGNING_SECRET", self.coupon_signing_secret),
                )
                if not value or value == self.DEV_SECRET
            ]
            if missing:
                raise ValueError(
                    f"ACTIVATION_MODE=live needs {' and '.join(missing)} set to a real secret "
                    "(the development default is only allowed in dry-run)"
                )
            if self.unsubscribe_base_url.startswith(("http://127.0.0.1", "http://localhost")):
                raise ValueError(
                    "ACTIVATION_MODE=live needs UNSUBSCRIBE_BASE_URL set to the public "
                    "unsubscribe endpoint (recipients cannot reach a localhost placeholder)"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str | None]) -> ActivationSettings:
        """Build from a mapping of the variables in ENV_VARS (missing or empty = default)."""
        values = {name: env.get(name) or None for name in cls.ENV_VARS}
        kwargs: dict[str, Any] = {}
        if values["ACTIVATION_MODE"]:
            kwargs["mode"] = values["ACTIVATION_MODE"].strip().lower()
        if values["UNSUBSCRIBE_BASE_URL"]:
            kwargs["unsubscribe_base_url"] = values["UNSUBSCRIBE_BASE_URL"]
        if values["CURRENCY_SYMBOL"] is not None:
            kwargs["currency_symbol"] = values["CURRENCY_SYMBOL"]
        kwargs["unsubscribe_signing_secret"] = values["UNSUBSCRIBE_SIGNING_SECRET"]
        kwargs["coupon_signing_secret"] = values["COUPON_SIGNING_SECRET"]
        return cls(**kwargs)

    @property
    def is_live(self) -> bool:
        return self.mode == "live"

    @property
    def unsubscribe_secret(self) -> str:
        return self.unsubscribe_signing_secret or self.DEV_SECRET

    @property
    def coupon_secret(self) -> str:
        return self.coupon_signing_secret or self.DEV_SECRET

    def __repr__(self) -> str:
        # Secrets never reach logs through a repr.
        return (
            f"ActivationSettings(mode={self.mode!r}, "
            f"unsubscribe_base_url={self.unsubscribe_base_url!r}, secrets=<hidden>)"
        )


# ---------------------------------------------------------------------------------------------
# cron


_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (
        "day of week",
        0,
        7,
        {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    ),
)


def cron_problem(expression: str) -> str | None:
    """None if `expression` is a valid 5-field cron string (minute hour day month weekday, with
    `*`, lists, ranges, steps and jan-dec / sun-sat names), else what is wrong with it."""
    parts = expression.split()
    if len(parts) != 5:
        return (
            f"{expression!r} has {len(parts)} field(s); a cron schedule has 5: "
            "minute hour day-of-month month day-of-week (e.g. '0 2 * * *')"
        )
    for part, (label, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            problem = _cron_item_problem(item.lower(), low, high, names)
            if problem:
                return f"{expression!r}: {label} field {part!r}: {problem}"
    return None


def _cron_item_problem(item: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    if not item:
        return "empty list element"
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step {step!r} must be a positive whole number"
    if base == "*":
        return None
    bounds = base.split("-")
    if len(bounds) > 2:
        return f"{base!r} is not a value or a range a-b"
    values = []
    for bound in bounds:
        if bound in names:
            values.append(names[bound])
        elif bound.isdigit():
            values.append(int(bound))
        else:
            return f"{bound!r} is not a number" + (f" or one of {sorted(names)}" if names else "")
    for value in values:
        if not low <= value <= high:
            return f"{value} is outside {low}-{high}"
    if len(values) == 2 and values[0] > values[1]:
        return f"range {base!r} runs backwards"
    return None


# ---------------------------------------------------------------------------------------------
# parsing


class _Problems:
    """Collects problems for one model, each prefixed with the model name and field path."""

    def __init__(self, model: str, yaml_path: str | None) -> None:
        self.model = model
        self.where = f"{model} ({yaml_path})" if yaml_path else model
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{self.where}: meta.activation{path}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(
    problems: _Problems,
    path: str,
    block: Mapping[str, Any],
    allowed: Sequence[str],
) -> None:
    for key in block:
        if key not in allowed:
            problems.add(f"{path}.{key}", f"unknown field; allowed here: {', '.join(allowed)}")


def _mapping(problems: _Problems, path: str, value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.add(path, f"must be a mapping, got {type(value).__name__} {value!r}")
        return None
    return value


def _parse_time(problems: _Problems, path: str, value: Any) -> dt.time | None:
    if _is_int(value):
        # YAML 1.1 reads 20:00 unquoted as sexagesimal 1200.
        problems.add(path, f"got the number {value}; quote times in YAML, e.g. '20:00'")
        return None
    if not isinstance(value, str) or not _HHMM.match(value):
        problems.add(path, f"{value!r} is not a time; use 24-hour 'HH:MM', e.g. '09:00'")
        return None
    hour, minute = value.split(":")
    return dt.time(int(hour), int(minute))


def _parse_variants(problems: _Problems, raw: Any) -> tuple[Variant, ...]:
    if raw is None:
        return (Variant(name="default", weight=1.0),)
    if not isinstance(raw, list) or not raw:
        problems.add(
            ".variants",
            "must be a non-empty list of {name, weight, subject?, template?, params?}",
        )
        return ()
    variants: list[Variant] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f".variants[{index}]"
        block = _mapping(problems, path, item)
        if block is None:
            if item is None:
                problems.add(path, "must be a mapping with name and weight")
            continue
        _check_keys(
            problems,
            path,
            block,
            ("name", "weight", "subject", "subject_file", "template", "params"),
        )
        name = block.get("name")
        if not isinstance(name, str) or not _VARIANT_NAME.match(name):
            problems.add(
                f"{path}.name",
                f"{name!r} is not a variant name; use lower-case letters, digits and _ "
                "(starting with a letter, at most 32 characters)",
            )
            name = None
        elif name in seen:
            problems.add(f"{path}.name", f"duplicate variant name {name!r}")
        weight = block.get("weight")
        if not _is_number(weight) or not 0 < weight <= 1:
            problems.add(f"{path}.weight", f"{weight!r} must be a number in (0, 1]")
            weight = None
        subject = block.get("subject")
        if subject is not None and (not isinstance(subject, str) or not subject.strip()):
            problems.add(f"{path}.subject", "must be a non-empty string (a Jinja template)")
            subject = None
        subject_file = block.get("subject_file")
        if subject_file is not None and (
            not isinstance(subject_file, str)
            or not re.match(r"^[a-z0-9][a-z0-9_.-]*\.txt$", subject_file)
        ):
            problems.add(
                f"{path}.subject_file",
                f"{subject_file!r} must be a .txt file name in the template folder, "
                "e.g. subject_b.txt",
            )
            subject_file = None
        if subject is not None and subject_file is not None:
            problems.add(path, "set subject or subject_file, not both")
        template = block.get("template")
        if template is not None and not isinstance(template, str):
            problems.add(f"{path}.template", "must be a template folder name")
            template = None
        params = _mapping(problems, f"{path}.params", block.get("params")) or {}
        if name is not None and weight is not None:
            seen.add(name)
            variants.append(
                Variant(
                    name=name,
                    weight=float(weight),
                    subject=subject,
                    subject_file=subject_file,
                    template=template,
                    params=tuple(sorted(params.items())),
                )
            )
    if len(variants) == len(raw) and abs(sum(v.weight for v in variants) - 1.0) > 1e-6:
        total = sum(v.weight for v in variants)
        problems.add(".variants", f"weights sum to {total:g}; they must sum to 1")
    return tuple(variants)


_TOP_LEVEL_FIELDS = (
    "channel",
    "template",
    "trigger",
    "holdout_share",
    "frequency_cap",
    "cooldown_days",
    "send_window",
    "consent",
    "budget",
    "cost_per_message",
    "variants",
    "guardrail",
    "coupon",
    "webhook",
    "ad_list",
)


def parse_activation(
    model: str,
    raw: Any,
    *,
    yaml_path: str | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> tuple[ActivationSpec | None, list[str]]:
    """Parse one model's `meta.activation` block; returns (spec or None, problems)."""
    problems = _Problems(model, yaml_path)
    block = _mapping(problems, "", raw)
    if block is None:
        if raw is None:
            problems.add("", "is empty; see docs/activation.md for the fields")
        return None, problems.items
    _check_keys(problems, "", block, _TOP_LEVEL_FIELDS)

    channel = block.get("channel")
    if channel not in CHANNELS:
        problems.add(".channel", f"{channel!r} is not a channel; allowed: {', '.join(CHANNELS)}")
        channel = None
    schedule, event, max_age = _parse_trigger(problems, block)
    holdout = _parse_holdout(problems, block)
    frequency_cap = _parse_frequency_cap(problems, block)
    cooldown = block.get("cooldown_days")
    if cooldown is not None and (not _is_int(cooldown) or cooldown < 1):
        problems.add(".cooldown_days", f"{cooldown!r} must be a whole number of days >= 1")
    send_window = _parse_send_window(problems, block)
    consent = _parse_consent(problems, block, channel)
    budget, cost = block.get("budget"), block.get("cost_per_message")
    if (budget is None) != (cost is None):
        missing = "cost_per_message" if cost is None else "budget"
        problems.add(f".{missing}", "budget and cost_per_message go together: set both or neither")
    for key, value in (("budget", budget), ("cost_per_message", cost)):
        if value is not None and (not _is_number(value) or value <= 0):
            problems.add(f".{key}", f"{value!r} must be a positive number")
    variants = _parse_variants(problems, block.get("variants"))
    guardrail = _parse_guardrail(problems, block, is_event=event is not None)
    coupon = _parse_coupon(problems, block)
    webhook, ad_list = _parse_destination(problems, block, channel)
    template = block.get("template")
    _check_templates(problems, template, variants, channel, templates_dir)

    if problems.items:
        return None, problems.items
    assert channel is not None and frequency_cap is not None and send_window is not None
    return (
        ActivationSpec(
            channel=channel,
            template=template,
            schedule=schedule,
            event=event,
            event_max_age_hours=max_age,
            cooldown_days=cooldown,
            holdout_share=float(holdout),
            frequency_cap=frequency_cap,
            send_window=send_window,
            consent=consent,
            variants=variants,
            guardrail=guardrail,
            budget=float(budget) if budget is not None else None,
            cost_per_message=float(cost) if cost is not None else None,
            coupon=coupon,
            webhook=webhook,
            ad_list=ad_list,
        ),
        [],
    )


def _parse_trigger(
    problems: _Problems, block: Mapping[str, Any]
) -> tuple[str | None, str | None, int | None]:
    """(schedule, event, max_age_hours): exactly one of schedule and event."""
    trigger = _mapping(problems, ".trigger", block.get("trigger"))
    if trigger is None:
        if "trigger" not in block:
            problems.add(
                ".trigger",
                "is required: {schedule: '<5-field cron>'} or {event: <trigger type>}",
            )
        return None, None, None
    _check_keys(problems, ".trigger", trigger, ("schedule", "event", "max_age_hours"))
    has_schedule, has_event = "schedule" in trigger, "event" in trigger
    if has_schedule == has_event:
        problems.add(
            ".trigger", "needs exactly one of schedule (5-field cron) or event (a trigger type)"
        )
    schedule = event = max_age = None
    if has_schedule:
        schedule = trigger["schedule"]
        problem = (
            cron_problem(schedule) if isinstance(schedule, str) else f"{schedule!r} is not a string"
        )
        if problem:
            problems.add(".trigger.schedule", problem)
            schedule = None
        if "max_age_hours" in trigger:
            problems.add(".trigger.max_age_hours", "only applies to event triggers")
    if has_event:
        event = trigger["event"]
        if event not in TRIGGER_TYPES:
            problems.add(
                ".trigger.event",
                f"{event!r} is not a trigger type; allowed: {', '.join(TRIGGER_TYPES)}",
            )
            event = None
        max_age = trigger.get("max_age_hours", DEFAULT_EVENT_MAX_AGE_HOURS)
        if not _is_int(max_age) or max_age <= 0:
            problems.add(".trigger.max_age_hours", f"{max_age!r} must be a positive integer")
            max_age = None
    return schedule, event, max_age


def _parse_holdout(problems: _Problems, block: Mapping[str, Any]) -> float | None:
    holdout = block.get("holdout_share")
    if "holdout_share" not in block:
        problems.add(
            ".holdout_share",
            f"is required: the share in [0, {MAX_HOLDOUT_SHARE}] never contacted "
            "(0 for no control group)",
        )
        return None
    if not _is_number(holdout) or not 0 <= holdout <= MAX_HOLDOUT_SHARE:
        problems.add(".holdout_share", f"{holdout!r} must be a number in [0, {MAX_HOLDOUT_SHARE}]")
        return None
    return float(holdout)


def _parse_frequency_cap(problems: _Problems, block: Mapping[str, Any]) -> FrequencyCap | None:
    cap = _mapping(problems, ".frequency_cap", block.get("frequency_cap"))
    if cap is None:
        if "frequency_cap" not in block:
            problems.add(".frequency_cap", "is required: {max_messages: <int>, per_days: <int>}")
        return None
    _check_keys(problems, ".frequency_cap", cap, ("max_messages", "per_days"))
    values = {key: cap.get(key) for key in ("max_messages", "per_days")}
    bad = [key for key, value in values.items() if not _is_int(value) or value < 1]
    for key in bad:
        problems.add(f".frequency_cap.{key}", f"{values[key]!r} must be a whole number >= 1")
    return None if bad else FrequencyCap(**values)


def _parse_send_window(problems: _Problems, block: Mapping[str, Any]) -> SendWindow | None:
    window = _mapping(problems, ".send_window", block.get("send_window"))
    if window is None:
        if "send_window" not in block:
            problems.add(
                ".send_window",
                "is required: {start: 'HH:MM', end: 'HH:MM', timezone: <IANA name>}",
            )
        return None
    _check_keys(problems, ".send_window", window, ("start", "end", "timezone"))
    start = _parse_time(problems, ".send_window.start", window.get("start"))
    end = _parse_time(problems, ".send_window.end", window.get("end"))
    if start is not None and start == end:
        problems.add(".send_window", "start and end are equal: the window would be empty")
    tz = window.get("timezone")
    try:
        if not isinstance(tz, str) or not tz:
            raise zoneinfo.ZoneInfoNotFoundError
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.add(
            ".send_window.timezone",
            f"{tz!r} is not an IANA time zone; use a name like 'Asia/Shanghai', "
            "'Europe/Paris' or 'UTC'",
        )
        return None
    if start is None or end is None or start == end:
        return None
    return SendWindow(start=start, end=end, timezone=tz)


def _parse_consent(problems: _Problems, block: Mapping[str, Any], channel: str | None) -> str:
    """Email and SMS imply their own consent; webhook and ad_list must say which applies."""
    consent = block.get("consent")
    if consent is None:
        if channel in ("email", "sms"):
            return channel
        if channel is not None:
            problems.add(
                ".consent",
                f"is required for channel {channel}: which consent allows it "
                f"({', '.join(CONSENT_CHANNELS)})",
            )
        return "none"
    if consent not in CONSENT_CHANNELS:
        problems.add(
            ".consent", f"{consent!r} is not a consent; allowed: {', '.join(CONSENT_CHANNELS)}"
        )
    return consent


def _parse_guardrail(problems: _Problems, block: Mapping[str, Any], *, is_event: bool) -> Guardrail:
    default = Guardrail(max_change_share=None if is_event else DEFAULT_MAX_CHANGE_SHARE)
    guard = _mapping(problems, ".guardrail", block.get("guardrail"))
    if guard is None:
        return default
    _check_keys(problems, ".guardrail", guard, ("max_change_share", "max_audience"))
    share = guard.get("max_change_share", default.max_change_share)
    if share is not None and (not _is_number(share) or share <= 0):
        problems.add(
            ".guardrail.max_change_share",
            f"{share!r} must be a positive number (0.5 = ±50%) or null to disable",
        )
        share = None
    max_audience = guard.get("max_audience")
    if max_audience is not None and (not _is_int(max_audience) or max_audience < 1):
        problems.add(".guardrail.max_audience", f"{max_audience!r} must be a whole number >= 1")
        max_audience = None
    return Guardrail(
        max_change_share=float(share) if share is not None else None, max_audience=max_audience
    )


def _parse_coupon(problems: _Problems, block: Mapping[str, Any]) -> CouponSpec | None:
    coupon = _mapping(problems, ".coupon", block.get("coupon"))
    if coupon is None:
        return None
    _check_keys(problems, ".coupon", coupon, ("prefix", "value", "valid_days"))
    prefix, value, valid_days = coupon.get("prefix"), coupon.get("value"), coupon.get("valid_days")
    ok = True
    if not isinstance(prefix, str) or not _COUPON_PREFIX.match(prefix):
        problems.add(
            ".coupon.prefix",
            f"{prefix!r} must be 2-8 upper-case letters or digits, starting with a letter",
        )
        ok = False
    if _is_number(value) and value > 0:
        value = f"{value:g}"
    elif not isinstance(value, str) or not value.strip() or len(value) > 64:
        problems.add(
            ".coupon.value",
            f"{value!r} must say what the coupon gives, as customers will read it: an amount, "
            "'15% off' or 'a free gift' (at most 64 characters)",
        )
        ok = False
    if not _is_int(valid_days) or valid_days < 1:
        problems.add(".coupon.valid_days", f"{valid_days!r} must be a whole number >= 1")
        ok = False
    if not ok:
        return None
    return CouponSpec(prefix=prefix, value=str(value).strip(), valid_days=valid_days)


def _parse_destination(
    problems: _Problems, block: Mapping[str, Any], channel: str | None
) -> tuple[WebhookSpec | None, AdListSpec | None]:
    """The channel-specific blocks: `webhook` (env var NAMES, never values) and `ad_list`."""
    webhook = ad_list = None
    hook = _mapping(problems, ".webhook", block.get("webhook"))
    if hook is not None:
        _check_keys(problems, ".webhook", hook, ("url_env", "secret_env"))
        names = {}
        for key in ("url_env", "secret_env"):
            name = hook.get(key)
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                problems.add(
                    f".webhook.{key}",
                    f"{name!r} must be the NAME of an environment variable (e.g. "
                    "CRM_WEBHOOK_URL), never the URL or secret itself",
                )
            else:
                names[key] = name
        if len(names) == 2:
            webhook = WebhookSpec(**names)
    ads = _mapping(problems, ".ad_list", block.get("ad_list"))
    if ads is not None:
        _check_keys(problems, ".ad_list", ads, ("platform",))
        platform = ads.get("platform")
        if platform in AD_PLATFORMS:
            ad_list = AdListSpec(platform=platform)
        else:
            problems.add(
                ".ad_list.platform",
                f"{platform!r} is not a platform; allowed: {', '.join(AD_PLATFORMS)}",
            )
    for name, required_fields in (("webhook", "{url_env, secret_env}"), ("ad_list", "{platform}")):
        if channel == name and name not in block:
            problems.add(f".{name}", f"is required for channel {name}: {required_fields}")
        elif channel not in (None, name) and name in block:
            problems.add(f".{name}", f"only applies to channel {name}, not {channel}")
    return webhook, ad_list


def _check_templates(
    problems: _Problems,
    template: Any,
    variants: Sequence[Variant],
    channel: str | None,
    templates_dir: Path,
) -> None:
    if template is None and channel in TEMPLATE_FILES:
        problems.add(".template", f"is required for channel {channel}: a folder under templates/")
    elif template is not None:
        if channel is not None and channel not in TEMPLATE_FILES:
            problems.add(".template", f"channel {channel} renders no template; remove it")
        else:
            _check_template(problems, ".template", template, channel, templates_dir)
    for index, variant in enumerate(variants):
        if variant.template is not None:
            _check_template(
                problems, f".variants[{index}].template", variant.template, channel, templates_dir
            )
        if (variant.subject or variant.subject_file) and channel not in (None, "email"):
            problems.add(f".variants[{index}]", "only email messages have a subject")
        folder = variant.template or template
        if (
            variant.subject_file
            and isinstance(folder, str)
            and (templates_dir / folder).is_dir()
            and not (templates_dir / folder / variant.subject_file).is_file()
        ):
            problems.add(
                f".variants[{index}].subject_file",
                f"no file {variant.subject_file!r} in template folder {folder!r}",
            )


def _check_template(
    problems: _Problems, path: str, template: Any, channel: str | None, templates_dir: Path
) -> None:
    if not isinstance(template, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", template):
        problems.add(
            path, f"{template!r} must be a template folder name (lower-case, digits, _ and -)"
        )
        return
    folder = templates_dir / template
    if not folder.is_dir():
        available = sorted(
            p.name for p in templates_dir.iterdir() if p.is_dir() and not p.name.startswith("_")
        )
        problems.add(
            path, f"no template folder {template!r} in {templates_dir}; available: {available}"
        )
        return
    required = TEMPLATE_FILES.get(channel or "", ())
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        problems.add(path, f"template folder {template!r} lacks {', '.join(missing)} for {channel}")


# ---------------------------------------------------------------------------------------------
# manifest


def _node_meta(node: Mapping[str, Any]) -> Mapping[str, Any]:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "activation" in config_meta:
        return config_meta
    return node.get("meta") or {}


def _is_audience(node: Mapping[str, Any]) -> bool:
    fqn = node.get("fqn") or []
    return len(fqn) > 2 and fqn[1] == "audiences"


def _yaml_path(node: Mapping[str, Any]) -> str | None:
    patch = node.get("patch_path")
    return patch.split("://", 1)[-1] if patch else node.get("original_file_path")


def load_campaigns(
    manifest: Mapping[str, Any], *, templates_dir: Path = TEMPLATES_DIR
) -> list[Campaign]:
    """Every audience model with `meta.activation`, validated, sorted by name.

    Raises one `ActivationSpecError` listing every problem in the project: invalid fields,
    activation declared outside models/audiences/, and columns the audience must declare in
    its YAML (customer_id; the channel's address column; trigger_id and fired_at for event
    campaigns; every variable the templates read).
    """
    campaigns: list[Campaign] = []
    all_problems: list[str] = []
    for unique_id, node in sorted((manifest.get("nodes") or {}).items()):
        if node.get("resource_type") != "model":
            continue
        meta = _node_meta(node)
        if "activation" not in meta:
            continue
        name = node["name"]
        yaml_path = _yaml_path(node)
        if not _is_audience(node):
            all_problems.append(
                f"{name} ({node.get('original_file_path')}): meta.activation: activations are "
                "declared on audience models only; move the model under models/audiences/"
            )
            continue
        spec, problems = parse_activation(
            name, meta["activation"], yaml_path=yaml_path, templates_dir=templates_dir
        )
        if spec is None:
            all_problems.extend(problems)
            continue
        columns = tuple(node.get("columns") or {})
        problems = _column_problems(name, yaml_path, spec, columns, templates_dir)
        if problems:
            all_problems.extend(problems)
            continue
        campaigns.append(
            Campaign(
                unique_id=unique_id,
                name=name,
                schema=node.get("schema") or "audiences",
                relation_name=node.get("relation_name") or f'"audiences"."{name}"',
                spec=spec,
                columns=columns,
                description=(node.get("description") or "").strip(),
                yaml_path=yaml_path,
                templates_dir=templates_dir,
            )
        )
    if all_problems:
        raise ActivationSpecError(all_problems)
    return sorted(campaigns, key=lambda c: c.name)


def required_columns(spec: ActivationSpec) -> list[str]:
    required = ["customer_id"]
    if spec.is_event:
        required += ["trigger_id", "fired_at"]
    address = ADDRESS_COLUMNS[spec.channel]
    if address:
        required.append(address)
    return required


def _column_problems(
    model: str,
    yaml_path: str | None,
    spec: ActivationSpec,
    columns: Sequence[str],
    templates_dir: Path,
) -> list[str]:
    from activations.render import string_variables, template_variables

    problems = _Problems(model, yaml_path)
    declared = set(columns)
    missing = [c for c in required_columns(spec) if c not in declared]
    if spec.channel == "ad_list" and not declared & {"email", "phone"}:
        missing.append("email or phone")
    if missing:
        problems.items.append(
            f"{problems.where}: columns: the audience must declare {', '.join(missing)} "
            f"in its YAML (channel {spec.channel}"
            + (f", event {spec.event}" if spec.is_event else "")
            + ")"
        )
    clashes = sorted(declared & RENDERER_VARIABLES)
    if spec.coupon is not None:
        clashes += sorted(declared & COUPON_VARIABLES)
    if clashes:
        problems.items.append(
            f"{problems.where}: columns: {', '.join(clashes)} clash with variables the renderer "
            "provides; rename them in the SQL"
        )
    provided = declared | RENDERER_VARIABLES | {"customer_id"}
    if spec.coupon is not None:
        provided |= COUPON_VARIABLES
    templates = {spec.template} | {v.template for v in spec.variants if v.template}
    for template in sorted(t for t in templates if t):
        for file_name, variables in sorted(template_variables(templates_dir, template).items()):
            unknown = sorted(set(variables) - provided)
            if unknown:
                hint = (
                    " (the campaign has no coupon block)"
                    if set(unknown) & COUPON_VARIABLES and spec.coupon is None
                    else ""
                )
                problems.items.append(
                    f"{problems.where}: template {template}/{file_name} reads "
                    f"{', '.join(unknown)}, which the audience does not declare as columns{hint}"
                )
    for index, variant in enumerate(spec.variants):
        if variant.subject:
            unknown = sorted(string_variables(variant.subject) - provided)
            if unknown:
                problems.add(
                    f".variants[{index}].subject",
                    f"reads {', '.join(unknown)}, which the audience does not declare as columns",
                )
    return problems.items


def _require_aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at!r} is a naive datetime; pass an aware one (e.g. UTC)")
    return at


__all__ = [
    "AD_PLATFORMS",
    "TEMPLATES_DIR",
    "TRIGGER_TYPES",
    "ActivationSettings",
    "ActivationSpec",
    "ActivationSpecError",
    "AdListSpec",
    "Campaign",
    "CouponSpec",
    "FrequencyCap",
    "Guardrail",
    "SendWindow",
    "Variant",
    "WebhookSpec",
    "cron_problem",
    "load_campaigns",
    "parse_activation",
    "required_columns",
]

"""Plan one campaign occasion: who gets which variant, who is held out, who is excluded and why.

Everything that decides *who* is set-based SQL in DuckDB over the audience table, and so is
recording the plan in the ledger (one insert from the plan table, `ledger.record_plan_query`).
Only a campaign with coupons walks its plan in Python, in batches, because each treatment row
gets a code (HMAC of its send_id); a 1M-row audience is never a 1M-row pandas frame.

The order of the funnel matters for measurement. Exclusions that make a person unreachable
(stale trigger, no address, no consent, suppressed, frequency-capped) come first; the holdout is
then drawn from the eligible people only, so treatment and control are comparable; the budget
cut walks the eligible people by expected value and keeps holdout and treatment rows from the
same ranked prefix, so the control group stays a fair sample of the people actually targeted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from activations import ledger
from activations.coupons import check_coupons, coupon_code, issue_coupons
from activations.messages import PlannedSend, SendRow, make_send_id
from activations.render import Renderer
from activations.spec import ActivationSettings, Campaign, required_columns

BATCH_SIZE = 50_000
# The suppression lists that stop each channel (besides `all`), as dispatch applies them.
SUPPRESSION_LISTS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("sms",),
    "webhook": ("webhook",),
    "ad_list": ("ad_list", "email", "sms"),
}
SAMPLES_PER_VARIANT = 5
# Hash buckets: the first 13 hex digits of an md5 (52 bits) scaled to [0, 1). md5 is used for
# its availability in DuckDB and Python alike, not for secrecy.
_BUCKET_DIGITS = 13
_BUCKET_SCALE = float(16**_BUCKET_DIGITS)


class PlanError(ValueError):
    """The audience cannot be planned (missing columns, duplicate keys, bad occasion)."""


def bucket(campaign: str, customer_id: str, salt: str) -> float:
    """The deterministic uniform number in [0, 1) that planning derives for a person; the SQL
    in `plan_campaign` computes exactly this (tests compare the two)."""
    digest = hashlib.md5(f"{campaign}\x1f{customer_id}\x1f{salt}".encode()).hexdigest()
    return int(digest[:_BUCKET_DIGITS], 16) / _BUCKET_SCALE


def _bucket_sql(campaign_param: str, customer_expr: str, salt: str) -> str:
    return (
        f"(('0x' || substr(md5({campaign_param} || chr(31) || {customer_expr} || chr(31) || "
        f"'{salt}'), 1, {_BUCKET_DIGITS}))::bigint / {_BUCKET_SCALE})"
    )


@dataclass(frozen=True)
class PlanReport:
    """Counts of one planning run; each person lands in exactly one of: stale_events,
    no_address, no_consent, suppressed, capped, over_budget, holdout, planned."""

    campaign: str
    occasion: str
    run_id: str
    relation: str
    audience_rows: int
    stale_events: int
    no_address: int
    no_consent: int
    suppressed: int
    capped: int
    over_budget: int
    holdout: int
    planned: int
    planned_new: int
    already_planned: int
    by_variant: dict[str, dict[str, int]]
    # Which ranking chose the people under a budget: expected_value,
    # churn_score_x_average_order_value, audience_order; None without a budget.
    budget_ranking: str | None
    consent_source: str
    coupons_issued: int
    planned_at: dt.datetime
    samples: tuple[PlannedSend, ...] = field(default=(), repr=False)

    @property
    def eligible(self) -> int:
        return self.holdout + self.planned

    def as_metadata(self) -> dict[str, Any]:
        """Counts only (no customer ids, no addresses): safe for Dagster metadata and logs."""
        return {
            "campaign": self.campaign,
            "occasion": self.occasion,
            "audience_rows": self.audience_rows,
            "stale_events": self.stale_events,
            "no_address": self.no_address,
            "no_consent": self.no_consent,
            "suppressed": self.suppressed,
            "capped": self.capped,
            "over_budget": self.over_budget,
            "holdout": self.holdout,
            "planned": self.planned,
            "planned_new": self.planned_new,
            "already_planned": self.already_planned,
            "coupons_issued": self.coupons_issued,
            "budget_ranking": self.budget_ranking,
            "consent_source": self.consent_source,
            "by_variant": self.by_variant,
        }


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    try:
        described = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.CatalogException as error:
        raise PlanError(
            f"audience {relation} does not exist; build it first (dbt build --select "
            f"{relation.split('.')[-1].strip(chr(34))})"
        ) from error
    return {row[0]: row[1] for row in described}


def _check_occasion(campaign: Campaign, occasion: str) -> None:
    if not occasion:
        raise PlanError(f"campaign {campaign.name}: occasion must not be empty")
    if not campaign.spec.is_event:
        try:
            dt.date.fromisoformat(occasion)
        except ValueError as error:
            # A timestamp here would make every run a new occasion, and rerunning would send
            # the same message twice.
            raise PlanError(
                f"campaign {campaign.name} is scheduled: its occasion is the run date "
                f"YYYY-MM-DD, not {occasion!r}"
            ) from error


def _naive_utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise PlanError(f"now={at!r} is naive; pass an aware datetime (UTC)")
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def plan_campaign(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    *,
    occasion: str,
    run_id: str,
    now: dt.datetime,
    audience_relation: str | None = None,
    settings: ActivationSettings | None = None,
    batch_size: int = BATCH_SIZE,
    samples_per_variant: int = SAMPLES_PER_VARIANT,
    record: bool = True,
) -> PlanReport:
    """Plan `campaign` for `occasion` (run date YYYY-MM-DD for scheduled campaigns; for event
    campaigns a label of this run, each row's own occasion being its trigger_id) and record the
    plan, holdout rows included, through `ledger.record_plan`.

    Renders the sample rows of every variant before recording anything, so a template that
    reads a missing column fails here, with the template and variable named.

    ``record=False`` is a dry run: the plan is checked and counted exactly as it would be
    recorded (planned_new / already_planned against the ledger, coupon code collisions) but
    nothing is written; samples carry the codes they would be issued.
    """
    spec = campaign.spec
    settings = settings or ActivationSettings()
    _check_occasion(campaign, occasion)
    now_utc = _naive_utc(now)
    relation = audience_relation or campaign.relation
    columns = _columns(con, relation)
    missing = [c for c in required_columns(spec) if c not in columns]
    if missing:
        raise PlanError(
            f"audience {relation} of campaign {campaign.name} lacks column(s) "
            f"{', '.join(missing)}; it has {', '.join(columns)}"
        )
    ledger.ensure_ledger(con)
    key = campaign.key_column
    _check_keys(con, campaign, relation, key)

    suffix = uuid.uuid4().hex[:8]
    plan_table = f"_activation_plan_{suffix}"
    recent_table = f"_activation_recent_{suffix}"
    params: dict[str, Any] = {"campaign": campaign.name, "occasion": occasion, "now": now_utc}

    # consent: the audience's own flag when it carries one, else the single customer view's
    consent_column = f"has_{spec.consent}_consent"
    if spec.consent == "none":
        consent_source, consent_expr, consent_join = "not required", "true", ""
    elif consent_column in columns:
        consent_source, consent_expr, consent_join = "audience", f"a.{consent_column}", ""
    else:
        consent_source = "marts.dim_customers"
        consent_expr = f"dc.{consent_column}"
        consent_join = "left join marts.dim_customers as dc on dc.customer_id = a.customer_id"

    address_expr = {
        "email": "nullif(lower(trim(a.email)), '')",
        "sms": "nullif(trim(a.phone), '')",
    }.get(spec.channel, "null")
    needs_address = spec.channel in ("email", "sms")

    # Suppressions, by the same rule dispatch re-checks just before sending: any suppression
    # on the channel's lists whose address hash or customer_id matches. An ad_list row is
    # matched on both the email and the phone it would upload.
    email_key = phone_key = "cast(null as varchar)"
    if spec.channel in ("email", "ad_list") and "email" in columns:
        email_key = "nullif(lower(trim(a.email)), '')"
    if spec.channel in ("sms", "ad_list") and "phone" in columns:
        phone_key = "nullif(replace(trim(a.phone), ' ', ''), '')"
    params["suppression_lists"] = [*SUPPRESSION_LISTS[spec.channel], ledger.ALL_CHANNELS]

    cap = spec.frequency_cap
    recent = ledger.recent_send_counts(con, spec.channel, now - dt.timedelta(days=cap.per_days))
    con.register(
        recent_table,
        pa.table(
            {
                "customer_id": pa.array(list(recent), pa.string()),
                "sent_count": pa.array(list(recent.values()), pa.int64()),
            }
        ),
    )

    variant_cases = " ".join(
        f"when variant_bucket < {cumulative!r} then '{variant.name}'"
        for variant, cumulative in _cumulative(spec.variants)
    )
    last_variant = f"'{spec.variants[-1].name}'"
    variant_expr = (
        f"case {variant_cases} else {last_variant} end" if variant_cases else last_variant
    )
    occasion_expr = "cast(a.trigger_id as varchar)" if spec.is_event else "$occasion"
    stale_expr = (
        f"cast(a.fired_at as timestamp) < $now - interval {int(spec.event_max_age_hours)} hour"
        if spec.is_event and spec.event_max_age_hours
        else "false"
    )
    ranking, value_expr = _ranking(columns)
    if spec.cooldown_days:
        params["cooldown_since"] = now_utc - dt.timedelta(days=spec.cooldown_days)
        cooldown_expr = f"""exists (
            select 1 from {ledger.SCHEMA}.sends as earlier
            where earlier.campaign = $campaign
                and earlier.customer_id = p.customer_id
                and earlier.send_id <> p.send_id
                and not earlier.is_holdout
                and earlier.status in ('planned', 'in_flight', 'accepted', 'unknown', 'deferred')
                and earlier.planned_at >= $cooldown_since
        )"""
    else:
        cooldown_expr = "false"
    max_by_budget = spec.max_messages_by_budget

    try:
        _execute(
            con,
            f"""
            create temp table {plan_table} as
            with audience as (
                select
                    cast(a.{key} as varchar) as audience_key,
                    cast(a.customer_id as varchar) as customer_id,
                    {occasion_expr} as send_occasion,
                    {address_expr} as address,
                    {email_key} as email_key,
                    {phone_key} as phone_key,
                    coalesce({consent_expr}, false) as has_consent,
                    {stale_expr} as is_stale,
                    {value_expr} as ranking_value,
                    a.audience_order
                from (
                    -- numbered before any join, so "audience order" is the table's own order
                    select *, row_number() over () as audience_order from {relation}
                ) as a
                {consent_join}
            ),

            assigned as (
                select
                    *,
                    {_bucket_sql("$campaign", "customer_id", "holdout")} as holdout_bucket,
                    {_bucket_sql("$campaign", "customer_id", "variant")} as variant_bucket
                from audience
            ),

            keyed as (
                select
                    *,
                    {variant_expr} as variant
                from assigned
            ),

            suppressions as (
                select * from {ledger.SCHEMA}.suppressions
                where channel in (select unnest($suppression_lists::varchar[]))
            ),

            suppressed_hashes as (
                select distinct address_sha256 from suppressions where address_sha256 is not null
            ),

            suppressed_customers as (
                select distinct customer_id from suppressions where customer_id is not null
            ),

            with_ids as (
                select
                    *,
                    substr(sha256(
                        $campaign || chr(31) || customer_id || chr(31) || send_occasion
                        || chr(31) || variant
                    ), 1, 32) as send_id
                from keyed
            )

            select
                p.* exclude (email_key, phone_key),
                coalesce(r.sent_count, 0) as recent_sends,
                s.send_id is not null as is_already_planned,
                p.holdout_bucket < {spec.holdout_share!r} as is_holdout,
                case
                    when p.is_stale then 'stale_events'
                    when {"p.address is null" if needs_address else "false"} then 'no_address'
                    when not p.has_consent then 'no_consent'
                    when se.address_sha256 is not null
                        or ss.address_sha256 is not null
                        or sc.customer_id is not null
                        then 'suppressed'
                    -- A message already planned for this occasion is not capped by its own
                    -- delivery: a rerun after dispatch must plan the same people.
                    when s.send_id is null and (
                        coalesce(r.sent_count, 0) >= {cap.max_messages}
                        or {cooldown_expr}
                    ) then 'capped'
                end as exclusion
            from with_ids as p
            left join suppressed_hashes as se on se.address_sha256 = sha256(p.email_key)
            left join suppressed_hashes as ss on ss.address_sha256 = sha256(p.phone_key)
            left join suppressed_customers as sc on sc.customer_id = p.customer_id
            left join {recent_table} as r on r.customer_id = p.customer_id
            left join {ledger.SCHEMA}.sends as s on s.send_id = p.send_id
            """,
            params,
        )
        # The budget cut walks the eligible rows by value, best first; a treatment row costs
        # one message, a holdout row costs nothing but is kept only while budget remains, so
        # both groups are drawn from the same ranked prefix.
        budget_clause = (
            f"""
            update {plan_table} set exclusion = 'over_budget'
            from (
                select
                    audience_key,
                    is_holdout,
                    sum(case when is_holdout then 0 else 1 end) over (
                        order by ranking_value desc nulls last, audience_order
                        rows between unbounded preceding and current row
                    ) as treatment_rank
                from {plan_table}
                where exclusion is null
            ) as ranked
            where {plan_table}.audience_key = ranked.audience_key
                and case
                    when ranked.is_holdout then ranked.treatment_rank >= {max_by_budget}
                    else ranked.treatment_rank > {max_by_budget}
                end
            """
            if max_by_budget is not None
            else None
        )
        if budget_clause:
            con.execute(budget_clause)
        report_counts = _counts(con, plan_table)
        by_variant = _by_variant(con, plan_table, [v.name for v in spec.variants])

        # Batches in a stable order; only rows that go to the ledger (planned and holdout).
        con.execute(
            f"""
            create temp table {plan_table}_rows as
            select
                audience_key,
                customer_id,
                send_occasion,
                variant,
                is_holdout,
                address,
                send_id,
                (row_number() over (order by send_id) - 1) // {int(batch_size)} as batch_number,
                row_number() over (
                    partition by variant, is_holdout order by send_id
                ) <= {int(samples_per_variant)} and not is_holdout as is_sample
            from {plan_table}
            where exclusion is null
            """
        )
        [(batches,)] = con.execute(
            f"select coalesce(max(batch_number) + 1, 0) from {plan_table}_rows"
        ).fetchall()

        renderer = Renderer(settings) if spec.channel in ("email", "sms") else None
        samples = _sample_sends(con, campaign, plan_table, relation, key, settings, now)
        if renderer is not None:
            # Fail before anything is recorded: a broken template stops the plan.
            for sample in samples:
                renderer.render(campaign, _as_send_row(sample))

        planned_new = already = coupons = 0
        final_samples: dict[str, PlannedSend] = {}
        sample_ids = {s.send_id for s in samples}
        if spec.coupon is None or not record:
            # Nothing per row needs Python: the plan goes to the ledger in one set-based
            # statement (the samples above already checked send_ids against make_send_id),
            # or, in a dry run, is checked and counted the same way without being written.
            rows_query = _row_query(plan_table, relation, key, "true", as_ledger_rows=True)
            counts = (
                ledger.record_plan_query(
                    con,
                    run_id,
                    rows_query,
                    {"campaign": campaign.name},
                    channel=spec.channel,
                    planned_at=now,
                )
                if record
                else ledger.count_plan_query(
                    con, rows_query, {"campaign": campaign.name}, channel=spec.channel
                )
            )
            planned_new, already = counts.planned_new, counts.already_planned
            if spec.coupon is not None:
                coupons = check_coupons(
                    con,
                    campaign=campaign.name,
                    sends=con.execute(
                        f"select send_id, customer_id from {plan_table}_rows where not is_holdout"
                    ).fetchall(),
                    coupon=spec.coupon,
                    secret=settings.coupon_secret,
                )
            batches = 0
        for rows in _batches(con, plan_table, relation, key, batches):
            issued: dict[str, tuple[str, dt.date, dt.date]] = {}
            if spec.coupon is not None:
                issued = issue_coupons(
                    con,
                    campaign=campaign.name,
                    # row = (send_id, customer_id, occasion, variant, is_holdout, ...)
                    sends=[(row[0], row[1]) for row in rows if not row[4]],
                    coupon=spec.coupon,
                    secret=settings.coupon_secret,
                    now=now,
                )
                coupons += len(issued)
            batch = [
                _planned_send(campaign, row, now, issued, parse=row[0] in sample_ids)
                for row in rows
            ]
            counts = ledger.record_plan(con, run_id, batch)
            planned_new += counts.planned_new
            already += counts.already_planned
            final_samples.update({s.send_id: s for s in batch if s.send_id in sample_ids})
    finally:
        for name in (f"{plan_table}_rows", plan_table):
            con.execute(f"drop table if exists {name}")
        with contextlib.suppress(duckdb.Error):
            con.unregister(recent_table)

    ordered_samples = tuple(
        final_samples.get(s.send_id, s)
        for s in sorted(samples, key=lambda s: (s.variant, s.send_id))
    )
    return PlanReport(
        campaign=campaign.name,
        occasion=occasion,
        run_id=run_id,
        relation=relation,
        audience_rows=report_counts["audience_rows"],
        stale_events=report_counts["stale_events"],
        no_address=report_counts["no_address"],
        no_consent=report_counts["no_consent"],
        suppressed=report_counts["suppressed"],
        capped=report_counts["capped"],
        over_budget=report_counts["over_budget"],
        holdout=report_counts["holdout"],
        planned=report_counts["planned"],
        planned_new=planned_new,
        already_planned=already,
        by_variant=by_variant,
        budget_ranking=ranking if max_by_budget is not None else None,
        consent_source=consent_source,
        coupons_issued=coupons,
        planned_at=now,
        samples=ordered_samples,
    )


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> None:
    # DuckDB rejects named parameters a statement does not use; pass only the ones it names.
    con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})


def _cumulative(variants: Any) -> Iterator[tuple[Any, float]]:
    total = 0.0
    for variant in variants[:-1]:
        total += variant.weight
        yield variant, total


def _ranking(columns: dict[str, str]) -> tuple[str, str]:
    if "expected_value" in columns:
        return "expected_value", "cast(a.expected_value as double)"
    if "churn_score" in columns and "average_order_value" in columns:
        return (
            "churn_score_x_average_order_value",
            "cast(a.churn_score as double) * cast(a.average_order_value as double)",
        )
    return "audience_order", "cast(null as double)"


def _check_keys(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, relation: str, key: str
) -> None:
    [(rows, distinct_keys, null_keys, null_customers)] = con.execute(
        f"""
        select
            count(*),
            count(distinct {key}),
            count(*) filter (where {key} is null),
            count(*) filter (where customer_id is null)
        from {relation}
        """
    ).fetchall()
    grain = "trigger" if key == "trigger_id" else "customer"
    if null_keys or null_customers:
        raise PlanError(
            f"audience {relation} of campaign {campaign.name} has {null_keys} row(s) with a "
            f"null {key} and {null_customers} with a null customer_id"
        )
    if rows != distinct_keys:
        raise PlanError(
            f"audience {relation} of campaign {campaign.name} has {rows - distinct_keys} "
            f"duplicate {key} value(s); its grain is one row per {grain}"
        )


def _counts(con: duckdb.DuckDBPyConnection, plan_table: str) -> dict[str, int]:
    [row] = con.execute(
        f"""
        select
            count(*),
            count(*) filter (where exclusion = 'stale_events'),
            count(*) filter (where exclusion = 'no_address'),
            count(*) filter (where exclusion = 'no_consent'),
            count(*) filter (where exclusion = 'suppressed'),
            count(*) filter (where exclusion = 'capped'),
            count(*) filter (where exclusion = 'over_budget'),
            count(*) filter (where exclusion is null and is_holdout),
            count(*) filter (where exclusion is null and not is_holdout)
        from {plan_table}
        """
    ).fetchall()
    names = (
        "audience_rows",
        "stale_events",
        "no_address",
        "no_consent",
        "suppressed",
        "capped",
        "over_budget",
        "holdout",
        "planned",
    )
    return dict(zip(names, (int(v) for v in row), strict=True))


def _by_variant(
    con: duckdb.DuckDBPyConnection, plan_table: str, variants: list[str]
) -> dict[str, dict[str, int]]:
    result = {name: {"treatment": 0, "holdout": 0} for name in variants}
    for variant, is_holdout, count in con.execute(
        f"""
        select variant, is_holdout, count(*) from {plan_table}
        where exclusion is null group by all
        """
    ).fetchall():
        result[variant]["holdout" if is_holdout else "treatment"] = int(count)
    return result


def _row_query(
    plan_table: str, relation: str, key: str, where: str, as_ledger_rows: bool = False
) -> str:
    # Holdout rows carry no context: they are never rendered, only counted. As ledger rows:
    # the columns ledger.record_plan_query takes, the campaign name a parameter ($campaign).
    if as_ledger_rows:
        return f"""
            select
                r.send_id, $campaign as campaign, r.customer_id, r.send_occasion as occasion,
                r.variant, r.is_holdout, r.address,
                case when r.is_holdout then null else cast(to_json(a) as varchar) end as context
            from {plan_table}_rows as r
            join {relation} as a on cast(a.{key} as varchar) = r.audience_key
            where {where}
        """
    return f"""
        select
            r.send_id, r.customer_id, r.send_occasion, r.variant, r.is_holdout, r.address,
            case when r.is_holdout then null else to_json(a) end as context
        from {plan_table}_rows as r
        join {relation} as a on cast(a.{key} as varchar) = r.audience_key
        where {where}
        order by r.send_id
    """


def _planned_send(
    campaign: Campaign,
    row: tuple[Any, ...],
    now: dt.datetime,
    issued: dict[str, tuple[str, dt.date, dt.date]],
    parse: bool = True,
) -> PlannedSend:
    """The planned send of one plan row. Without ``parse`` (a row that is recorded but not
    rendered now) and without a coupon to add, the context stays the JSON text DuckDB wrote."""
    send_id, customer_id, occasion, variant, is_holdout, address, context = row
    expected = make_send_id(campaign.name, customer_id, occasion, variant)
    if send_id != expected:
        # The SQL and the contract's make_send_id must agree, or reruns would re-send.
        raise PlanError(
            f"campaign {campaign.name}: send_id computed in SQL ({send_id}) differs from "
            f"make_send_id ({expected})"
        )
    has_coupon = send_id in issued and campaign.spec.coupon is not None
    fields: dict[str, Any] = {}
    context_json = None
    if context and not parse and not has_coupon:
        context_json = context
    elif context:
        fields = json.loads(context)
    if has_coupon:
        code, valid_from, valid_until = issued[send_id]
        fields["coupon_code"] = code
        fields["coupon_value"] = campaign.spec.coupon.value
        fields["coupon_valid_from"] = valid_from.isoformat()
        fields["coupon_valid_until"] = valid_until.isoformat()
    return PlannedSend(
        send_id=send_id,
        campaign=campaign.name,
        customer_id=customer_id,
        occasion=occasion,
        variant=variant,
        channel=campaign.spec.channel,
        is_holdout=bool(is_holdout),
        address=address,
        context=fields,
        planned_at=now,
        context_json=context_json,
    )


def _batches(
    con: duckdb.DuckDBPyConnection, plan_table: str, relation: str, key: str, batches: int
) -> Iterator[list[tuple[Any, ...]]]:
    for number in range(batches):
        yield con.execute(
            _row_query(plan_table, relation, key, f"r.batch_number = {number}")
        ).fetchall()


def _sample_sends(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    plan_table: str,
    relation: str,
    key: str,
    settings: ActivationSettings,
    now: dt.datetime,
) -> list[PlannedSend]:
    rows = con.execute(_row_query(plan_table, relation, key, "r.is_sample")).fetchall()
    coupon = campaign.spec.coupon
    issued: dict[str, tuple[str, dt.date, dt.date]] = {}
    if coupon is not None:
        # Codes are pure functions of the send_id, so samples render with their real code
        # before anything is written; the batch loop records the same codes.
        valid_from = now.date()
        valid_until = valid_from + dt.timedelta(days=coupon.valid_days)
        issued = {
            row[0]: (
                coupon_code(row[0], settings.coupon_secret, coupon.prefix),
                valid_from,
                valid_until,
            )
            for row in rows
        }
    return [_planned_send(campaign, row, now, issued) for row in rows]


def _as_send_row(send: PlannedSend) -> SendRow:
    return SendRow(
        send_id=send.send_id,
        campaign=send.campaign,
        customer_id=send.customer_id,
        occasion=send.occasion,
        variant=send.variant,
        channel=send.channel,
        address=send.address,
        context=send.context,
        attempt=0,
    )

"""Activation assets, checks, jobs, schedules and sensors, built from the dbt manifest.

Every audience model with `meta.activation` becomes a campaign: a `plan` asset (who gets what,
recorded in the ledger, previews written), a blocking `audience_size_guardrail` check on it,
and a `dispatch` asset that sends through the campaign's channel. A campaign with a cron
trigger gets a schedule; one with an event trigger gets a sensor on `marts.fct_trigger_events`.
Adding a campaign is one SQL file and its YAML: nothing here names a campaign.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from activations import holds, ledger
from activations.dispatch import dispatch
from activations.events import EventSpool, ingest_spool
from activations.guardrail import evaluate_guardrail
from activations.plan import plan_campaign
from activations.preview import write_previews
from activations.render import Renderer
from activations.settings import ENV_VARS as PROVIDER_ENV_VARS
from activations.settings import ProviderSettings, build_channel, webhook_settings
from activations.spec import ActivationSettings, Campaign, load_campaigns
from orchestration.concurrency import EXCLUSIVE_RUN_TAGS
from orchestration.defs.transform.project import dbt_project

OVERRIDE_TAG = "activation/guardrail_override"
PROVIDER_EVENTS = dg.AssetKey(["activation", "provider_events"])


def event_spool() -> EventSpool:
    """Where the webhook receiver (`cdp webhooks serve`) spools verified provider events."""
    return EventSpool(os.environ.get("ACTIVATION_EVENT_SPOOL", "data/event_spool"))


SETTINGS_ENV_VARS = tuple(dict.fromkeys((*ActivationSettings.ENV_VARS, *PROVIDER_ENV_VARS)))


class ActivationResource(dg.ConfigurableResource):
    """Activation settings, one field per environment variable (ACTIVATION_MODE, SendGrid,
    Twilio, ad list, unsubscribe and coupon secrets). Bound with `dg.EnvVar`, so values are
    resolved at run time and never shown in the UI; unset variables keep the defaults, and the
    default mode is dry-run: previews only, no provider call."""

    preview_dir: str = "data/previews"
    activation_mode: str | None = None
    unsubscribe_base_url: str | None = None
    unsubscribe_signing_secret: str | None = None
    coupon_signing_secret: str | None = None
    currency_symbol: str | None = None
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str | None = None
    sendgrid_from_email: str | None = None
    sendgrid_from_name: str | None = None
    sendgrid_sandbox_mode: str | None = None
    sendgrid_asm_group_id: str | None = None
    sendgrid_webhook_public_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base_url: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_status_callback_url: str | None = None
    ad_list_dir: str | None = None
    ad_api_url: str | None = None
    ad_api_token: str | None = None

    def _env(self) -> dict[str, str | None]:
        return {name: getattr(self, name.lower(), None) for name in SETTINGS_ENV_VARS}

    def activation_settings(self) -> ActivationSettings:
        return ActivationSettings.from_env(self._env())

    def provider_settings(self) -> ProviderSettings:
        return ProviderSettings.from_env(self._env())


def activation_resource() -> ActivationResource:
    # Only whether a variable exists is looked at here; its value is resolved by dg.EnvVar at
    # run time. An unset variable must stay unset (dg.EnvVar would fail the run on it).
    bound: dict[str, Any] = {
        name.lower(): dg.EnvVar(name) for name in SETTINGS_ENV_VARS if name in os.environ
    }
    if "ACTIVATION_PREVIEW_DIR" in os.environ:
        bound["preview_dir"] = dg.EnvVar("ACTIVATION_PREVIEW_DIR")
    return ActivationResource(**bound)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _occasion(context: dg.AssetExecutionContext, campaign: Campaign) -> str:
    """A scheduled campaign sends once per day (the schedule's date); an event campaign's rows
    carry their own trigger_id, and the run is only a label."""
    if campaign.spec.is_event:
        return f"run:{context.run.run_id}"
    scheduled = context.run.tags.get("dagster/scheduled_execution_time")
    day = dt.datetime.fromisoformat(scheduled).date() if scheduled else _now().date()
    return day.isoformat()


def _overridden(
    context: dg.OpExecutionContext | dg.AssetCheckExecutionContext, campaign: Campaign
) -> bool:
    return context.run.tags.get(OVERRIDE_TAG) in (campaign.name, "all")


def _plan_key(campaign: Campaign) -> dg.AssetKey:
    return dg.AssetKey(["activation", campaign.name, "plan"])


def _dispatch_key(campaign: Campaign) -> dg.AssetKey:
    return dg.AssetKey(["activation", campaign.name, "dispatch"])


def _audience_key(campaign: Campaign) -> dg.AssetKey:
    return dg.AssetKey([campaign.schema, campaign.name])


def _planned_count(instance: dg.DagsterInstance, campaign: Campaign) -> int:
    """People this run's plan will contact (holdout excluded), from the plan's metadata."""
    event = instance.get_latest_materialization_event(_plan_key(campaign))
    return int(event.asset_materialization.metadata["planned"].value) if event else 0


def _flat(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
        for key, value in metadata.items()
        if value is not None
    }


def _trigger(campaign: Campaign) -> str:
    spec = campaign.spec
    return f"cron `{spec.schedule}`" if spec.schedule else f"trigger event `{spec.event}`"


def build_campaign(campaign: Campaign) -> dict[str, list[Any]]:
    spec = campaign.spec
    plan_key, dispatch_key = _plan_key(campaign), _dispatch_key(campaign)

    @dg.asset(
        key=plan_key,
        deps=[_audience_key(campaign)],
        group_name="activation",
        pool="duckdb",
        kinds={"duckdb"},
        description=(
            f"Plans campaign `{campaign.name}` ({spec.channel}, {_trigger(campaign)}): applies "
            "consent, suppressions, frequency cap, budget, deterministic holdout and variants to "
            "the audience, records every message in `activation.sends` (holdout included) and "
            "writes HTML previews. In dry-run (the default) the plan is checked and counted "
            "the same way and previewed, but no send or coupon is written."
        ),
    )
    def plan(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, activation: ActivationResource
    ) -> dg.MaterializeResult:
        settings = activation.activation_settings()
        occasion = _occasion(context, campaign)
        with duckdb.get_connection() as con:
            ledger.ensure_ledger(con)
            ledger.start_run(
                con, run_id=context.run.run_id, campaign=campaign.name, occasion=occasion
            )
            report = plan_campaign(
                con,
                campaign,
                occasion=occasion,
                run_id=context.run.run_id,
                now=_now(),
                settings=settings,
                record=settings.mode == "live",
            )
            out = write_previews(
                con, campaign, report, Path(activation.preview_dir), settings=settings
            )
            discarded = (
                0 if settings.mode == "live" else holds.discard_plan(con, context.run.run_id)
            )
        metadata = {
            **report.as_metadata(),
            "mode": settings.mode,
            "dry_run_discarded": discarded,
            "preview": dg.MetadataValue.path(str(out)),
        }
        return dg.MaterializeResult(metadata=_flat(metadata))

    @dg.asset_check(
        asset=plan_key,
        name="audience_size_guardrail",
        blocking=True,
        description=(
            "Stops the send when the planned audience moved more than the campaign's "
            "guardrail.max_change_share (default ±50%) against the last successful send, or "
            f"exceeds guardrail.max_audience. Override for one run with the run tag "
            f"`{OVERRIDE_TAG}={campaign.name}` (or `all`)."
        ),
    )
    def guardrail(
        context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
    ) -> dg.AssetCheckResult:
        planned = _planned_count(context.instance, campaign)
        override = _overridden(context, campaign)
        with duckdb.get_connection() as con:
            last = ledger.last_successful_run(con, campaign.name)
            result = evaluate_guardrail(planned, last, spec, override=override)
            held = 0 if result.passed else holds.hold_run(con, context.run.run_id)
            released = holds.release_held(con, campaign.name) if override else 0
            if not result.passed:
                ledger.finish_run(
                    con,
                    run_id=context.run.run_id,
                    status="blocked",
                    planned_count=planned,
                    holdout_count=0,
                )
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.reason,
            metadata=_flat(
                {
                    "planned": planned,
                    "baseline": result.baseline_count,
                    "change_share": result.change_share,
                    "overridden": result.overridden,
                    "held": held,
                    "released": released,
                }
            ),
        )

    @dg.asset(
        key=dispatch_key,
        deps=[plan_key],
        group_name="activation",
        pool="duckdb",
        kinds={spec.channel},
        description=(
            f"Sends campaign `{campaign.name}` through {spec.channel}: claims planned ledger rows, "
            "re-checks consent, suppressions and the frequency cap just before sending, marks "
            "each batch in flight before the provider call and records accepted / rejected / "
            "unknown after it, so a retry or rerun never sends a message twice. Calls nothing "
            "unless ACTIVATION_MODE=live."
        ),
    )
    def send(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, activation: ActivationResource
    ) -> dg.MaterializeResult:
        settings = activation.activation_settings()
        providers = activation.provider_settings()
        webhook = (
            # Read at run time, not load time: the URL and secret never reach the UI.
            webhook_settings(
                os.environ, url_env=spec.webhook.url_env, secret_env=spec.webhook.secret_env
            )
            if spec.channel == "webhook" and spec.webhook is not None
            else None
        )
        # Fails here, before any call, when live mode lacks a key.
        channel = build_channel(spec.channel, providers, webhook=webhook)
        renderer = Renderer(settings)
        occasion = None if spec.is_event else _occasion(context, campaign)
        with duckdb.get_connection() as con:
            report = dispatch(
                con,
                campaign=campaign.name,
                channel=channel,
                render=lambda row: renderer.render(campaign, row),
                run_id=context.run.run_id,
                occasion=occasion,
                consent=spec.consent,
                frequency_cap=spec.frequency_cap,
                is_window_open=spec.send_window.contains,
                max_messages=spec.max_messages_by_budget,
                # An unsubscribe, bounce or STOP that arrived during the run applies to the
                # next chunk, not tomorrow.
                before_chunk=lambda c: ingest_spool(c, event_spool()),
            )
            if settings.mode == "live":
                ledger.finish_run(
                    con,
                    run_id=context.run.run_id,
                    status="succeeded",
                    planned_count=_planned_count(context.instance, campaign),
                    holdout_count=0,
                    override=_overridden(context, campaign),
                )
        return dg.MaterializeResult(metadata=_flat({"mode": settings.mode, **report.as_metadata()}))

    job = dg.define_asset_job(
        name=f"activate__{campaign.name}",
        selection=dg.AssetSelection.assets(_audience_key(campaign), plan_key, dispatch_key),
        # The steps run one after another (each needs the one before, and all write the
        # warehouse); a process per step only loaded the code location three more times.
        # 3000 customers, win-back in dry run, three runs each: 23.1-26.1 s with a process per
        # step, 7.2-9.5 s in the run's process; the steps 6.3-6.6 s either way.
        executor_def=dg.in_process_executor,
        description=f"Rebuild the audience {campaign.name}, plan it and send it.",
        # Queued behind a running nightly build, so the audience is built from one night's
        # marts and scores, never from a build half done.
        tags={"activation/campaign": campaign.name, **EXCLUSIVE_RUN_TAGS},
    )
    schedules, sensors = [], []
    if spec.schedule:
        schedules.append(
            dg.ScheduleDefinition(
                name=f"activate__{campaign.name}__schedule",
                job=job,
                cron_schedule=spec.schedule,
                execution_timezone=spec.send_window.timezone,
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        )
    else:
        sensors.append(trigger_sensor(campaign, job))
    return {
        "assets": [plan, send],
        "asset_checks": [guardrail],
        "jobs": [job],
        "schedules": schedules,
        "sensors": sensors,
    }


def new_triggers(
    warehouse: str, trigger_type: str, recorded_after: str | None, limit: int = 100_000
) -> tuple[list[str], str | None]:
    """Trigger ids of `trigger_type` recorded after the cursor, and the new cursor. Read-only:
    while a run holds the warehouse's write lock the tick is skipped, not failed."""
    with duckdb.connect(warehouse, read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'fct_trigger_events'"
        ).fetchone()[0]
        if not exists:
            return [], recorded_after
        rows = con.execute(
            """select trigger_id, cast(recorded_at as varchar) from marts.fct_trigger_events
               where trigger_type = ? and (? is null or recorded_at > cast(? as timestamp))
               order by recorded_at, trigger_id limit ?""",
            [trigger_type, recorded_after, recorded_after, limit],
        ).fetchall()
    if not rows:
        return [], recorded_after
    return [trigger_id for trigger_id, _ in rows], rows[-1][1]


def trigger_sensor(campaign: Campaign, job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"activate__{campaign.name}__on_{campaign.spec.event}",
        job=job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Launches `{job.name}` when new `{campaign.spec.event}` rows land in "
            "marts.fct_trigger_events. The run key is the hash of the trigger ids, so a batch of "
            "triggers is sent by one run only; the cursor moves only after the request is made."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        warehouse = os.environ.get("DUCKDB_PATH", "data/warehouse.duckdb")
        if not Path(warehouse).exists():
            return dg.SkipReason(f"no warehouse at {warehouse} yet")
        try:
            trigger_ids, cursor = new_triggers(warehouse, campaign.spec.event, context.cursor)
        except duckdb.IOException as error:
            return dg.SkipReason(
                f"warehouse busy (a run holds the write lock): {type(error).__name__}"
            )
        if not trigger_ids:
            return dg.SkipReason(f"no new {campaign.spec.event} triggers")
        run_key = hashlib.sha256("\n".join(trigger_ids).encode()).hexdigest()[:32]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{campaign.name}:{run_key}",
                    tags={"activation/triggers": str(len(trigger_ids))},
                )
            ],
            cursor=cursor,
        )

    return _sensor


@dg.asset(
    key=PROVIDER_EVENTS,
    group_name="activation",
    pool="duckdb",
    description=(
        "Ingests verified provider webhook events spooled by `cdp webhooks serve` (SendGrid "
        "event webhook, Twilio inbound STOP and status callbacks) into "
        "`activation.provider_events`, deduplicated on the event id: unsubscribes, bounces, spam "
        "reports and STOPs become suppressions, and `unknown` sends whose send_id shows up as "
        "processed or delivered are reconciled instead of being resent."
    ),
)
def provider_events(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        ledger.ensure_ledger(con)
        report = ingest_spool(con, event_spool())
    return dg.MaterializeResult(metadata=_flat(dataclasses.asdict(report)))


provider_events_job = dg.define_asset_job("ingest_provider_events", selection=[PROVIDER_EVENTS])


@dg.sensor(
    job=provider_events_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Ingests spooled provider events as they arrive (run key: the spooled files).",
)
def provider_events_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    pending = event_spool().pending()
    if not pending:
        return dg.SkipReason("no spooled provider events")
    key = hashlib.sha256("\n".join(p.name for p in pending).encode()).hexdigest()[:32]
    return dg.RunRequest(run_key=f"provider_events:{key}")


def campaigns_from_manifest() -> list[Campaign]:
    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    return load_campaigns(manifest)


@dg.definitions
def defs() -> dg.Definitions:
    parts: dict[str, list[Any]] = {
        "assets": [],
        "asset_checks": [],
        "jobs": [],
        "schedules": [],
        "sensors": [],
    }
    for campaign in campaigns_from_manifest():
        for kind, items in build_campaign(campaign).items():
            parts[kind].extend(items)
    parts["assets"].append(provider_events)
    parts["jobs"].append(provider_events_job)
    parts["sensors"].append(provider_events_sensor)
    return dg.Definitions(**parts, resources={"activation": activation_resource()})

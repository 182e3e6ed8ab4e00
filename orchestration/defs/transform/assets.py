"""dbt models as Dagster assets, built with `dbt build` (models and their tests).

Two sets: every model except the audiences, and the audiences. Audiences read the ML score
tables, which are built by Python assets from the marts; one dbt step for both would put the
ML assets inside the dbt step (a cycle), so audiences are their own step after the ML assets.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource, build_dbt_asset_selection, dbt_assets
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_UNIQUE_ID_METADATA_KEY,
    get_manifest_and_translator_from_dbt_assets,
)
from dagster_dbt.utils import select_unique_ids
from dagster_duckdb import DuckDBResource

from orchestration.concurrency import EXCLUSIVE_RUN_TAGS
from orchestration.defs.transform.project import (
    dbt_project,
    dbt_resource,
    kept_target_invocations,
)
from orchestration.defs.transform.translator import CdpDbtTranslator
from orchestration.environ import environment
from orchestration.ingestion.contract import SOURCES
from orchestration.ingestion.loader import ensure_tables

# Audiences that read an ML output (churn scores, recommendations) are built by their own asset
# after the ML steps. The others (cart abandonment, first purchase, repurchase reminder...) are
# built with the marts by `dbt_models`: a separate dbt invocation for them cost about 3.7 s of
# start-up at 1M customers (the nightly's `dbt_audiences_2` step: 6.0 s for 2.3 s of dbt).
ML_AUDIENCES = "path:models/audiences,source:ml+"
TRIGGER_PATH = "tag:trigger_path"
# Landed sources whose new rows can fire a trigger.
# The rules new orders fire; the time-based ones come due by the clock (nightly build).
ORDER_TRIGGER_RULES = ["order_milestones", "spend_spikes"]
TRIGGER_SOURCES = (
    "online_orders",
    "online_order_lines",
    "pos_transactions",
    "pos_lines",
    "web_events",
)


class DbtBuildConfig(dg.Config):
    """Options for one dbt build from the launchpad."""

    as_of_date: str | None = None
    """Compute lifecycle, RFM and triggers as of this date (YYYY-MM-DD) instead of today: replays
    a past night or pins the demo data's last day."""
    full_refresh: bool = False
    """Rebuild incremental models (orders, stage history, trigger events) from scratch. Trigger
    events fired before are recorded again with a new recorded_at; activations dedupe on
    trigger_id."""
    tests: bool = True
    """Run the models' data and unit tests (`dbt build`); off, `dbt run` only builds the models.
    `refresh_triggers` turns them off: it is on the latency path of every trigger, and the
    nightly build tests the same models."""
    trigger_rules: list[str] | None = None
    """Only evaluate these trigger rule sets in fct_trigger_events (order_milestones,
    spend_spikes, dormancy_warnings, birthdays, cart_abandonments, entered_at_risk); all when
    unset. `refresh_triggers` evaluates the ones new orders fire."""


def missing_parents(
    context: dg.AssetExecutionContext, manifest: Mapping[str, Any], con: Any
) -> dict[str, list[str]]:
    """For a run that builds only some models (a campaign's audience, the trigger path, a
    hand-picked asset): the models it builds whose parent tables the warehouse does not have,
    with those parents (`schema.table`). Empty for a full build, which builds the parents too.
    Sources are left out: the models that read an optional source (ML scores, sends) check for
    it themselves, and the raw tables are created before every build."""
    if not context.is_subset:
        return {}
    nodes = manifest["nodes"]
    specs = context.assets_def.specs_by_key
    selected = {
        specs[key].metadata.get(DAGSTER_DBT_UNIQUE_ID_METADATA_KEY)
        for key in context.selected_asset_keys
    }
    existing = {
        f"{schema}.{table}".lower()
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }

    def relations(unique_id: str) -> Iterator[str]:
        for parent_id in nodes[unique_id]["depends_on"]["nodes"]:
            parent = nodes.get(parent_id)
            if parent is None or parent["resource_type"] != "model" or parent_id in selected:
                continue
            if parent["config"]["materialized"] == "ephemeral":
                yield from relations(parent_id)  # compiled into the model's own SQL
            else:
                yield f"{parent['schema']}.{parent['alias'] or parent['name']}"

    missing = {}
    for unique_id in sorted(u for u in selected if u and u.startswith("model.")):
        absent = sorted({r for r in relations(unique_id) if r.lower() not in existing})
        if absent:
            node = nodes[unique_id]
            missing[f"{node['schema']}.{node['alias'] or node['name']}"] = absent
    return missing


def require_parents(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> None:
    """Fails the step before dbt starts when a partial build would read tables the warehouse
    does not have yet (a campaign launched before the first nightly build), naming them and
    the job that builds them; dbt's own error names one table and not the cure."""
    # The manifest the asset was defined from, already in memory.
    manifest, _, _ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    with duckdb.get_connection() as con:
        missing = missing_parents(context, manifest, con)
    if missing:
        lines = [f"{model} reads {', '.join(parents)}" for model, parents in missing.items()]
        raise dg.Failure(
            description=(
                "The warehouse does not have the tables this run's models read; this run builds "
                "only the selected models, not what they are built from. Materialise the "
                "`nightly_build` job (or run `cdp run`) once first. Missing: " + "; ".join(lines)
            ),
            metadata={"missing_parents": dg.MetadataValue.json(missing)},
            allow_retries=False,
        )


def dbt_invocation(
    dbt: DbtCliResource, config: DbtBuildConfig, context: dg.AssetExecutionContext
) -> DbtCliInvocation:
    """Starts dbt on the run's selection of this asset's models.

    dbt's default ("eager") indirect selection runs every test that reads a selected model,
    also those that read a model outside the run: in a run of `fct_orders` alone, the check of
    `dim_customers`' order counts against it, on a `dim_customers` not rebuilt yet, fails a
    correct build. "buildable" runs a test only when each of its models is built in the run or
    upstream of it; a whole build runs the same tests either way. A DBT_INDIRECT_SELECTION set
    in the environment wins; dagster-dbt still turns it off when it selects tests one by one.
    """
    with environment(
        DBT_INDIRECT_SELECTION=os.environ.get("DBT_INDIRECT_SELECTION") or "buildable"
    ):
        return dbt.cli(dbt_build_args(config), context=context)


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    args = ["build" if config.tests else "run"]
    dbt_vars: dict[str, Any] = {}
    if config.as_of_date:
        dbt_vars["as_of_date"] = config.as_of_date
    if config.trigger_rules is not None:
        dbt_vars["trigger_rules"] = config.trigger_rules
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if config.full_refresh:
        args.append("--full-refresh")
    return args


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=CdpDbtTranslator(),
    exclude=ML_AUDIENCES,
    name="dbt_models",
    pool="duckdb",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def dbt_models(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
) -> Iterator[Any]:
    """dbt staging, customer view, lifecycle marts, triggers and reports over `raw.*` in the
    DuckDB file at DUCKDB_PATH, and the audiences that read no ML output (`models/audiences/`).
    Lifecycle columns are as of today unless `as_of_date` is set in the run config."""
    # A retailer may not send every source (orders only is common): empty raw tables let
    # every staging view compile, and downstream models simply see no rows.
    with duckdb.get_connection() as con:
        for source in SOURCES.values():
            ensure_tables(con, source)
    require_parents(context, duckdb)
    yield from dbt_invocation(dbt, config, context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=CdpDbtTranslator(),
    select=ML_AUDIENCES,
    name="dbt_audiences",
    pool="duckdb",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def dbt_audiences(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
) -> Iterator[Any]:
    """Audience models (`models/audiences/`) that read the churn scores or the recommendations
    (`source('ml', ...)`, directly or through `int_audience_recommendations`): who each campaign
    reaches tonight, one row per customer or trigger, with the columns its templates need. Built
    after the ML assets; the audiences that need no ML output are built by `dbt_models`."""
    require_parents(context, duckdb)
    yield from dbt_invocation(dbt, config, context).stream()


def _has_ml_audiences(manifest: dict[str, Any]) -> bool:
    """Whether ML_AUDIENCES selects any model: `dbt_audiences` selects nothing otherwise, and a
    dbt asset with an empty selection fails the code location."""
    selected = select_unique_ids(
        select=ML_AUDIENCES, exclude="", selector="", project=dbt_project, manifest_json=manifest
    )
    return any(unique_id.startswith("model.") for unique_id in selected)


refresh_triggers = dg.define_asset_job(
    "refresh_triggers",
    selection=build_dbt_asset_selection([dbt_models], dbt_select=TRIGGER_PATH).without_checks(),
    # One dbt step: a process of its own would only load the code location again on the way
    # to every trigger. 3000 customers, three runs each: 11.8-14.5 s with a step process,
    # 7.2-9.4 s in the run's process; the dbt step 6.0-6.7 s either way.
    executor_def=dg.in_process_executor,
    tags=EXCLUSIVE_RUN_TAGS,
    config={
        "ops": {"dbt_models": {"config": {"tests": False, "trigger_rules": ORDER_TRIGGER_RULES}}}
    },
    description=(
        "The lean path from newly landed orders to marts.fct_trigger_events: the incremental "
        "order models (dbt tag `trigger_path`) attribute the new orders through the current "
        "identifier map, and the rules new orders fire (first/second purchase, high-value new "
        "customer, spend spike) record their triggers. Identity, the customer view, lifecycle "
        "marts, reports and the time-based triggers wait for the nightly build."
    ),
)


@dg.sensor(
    name="refresh_triggers_on_landing",
    job=refresh_triggers,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Launches `refresh_triggers` after new orders or receipts (or their lines) were "
        "ingested. One run covers every load since the last one: the cursor is the newest "
        "materialisation's storage id, which is also the run key."
    ),
)
def refresh_triggers_on_landing(
    context: dg.SensorEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    after = int(context.cursor) if context.cursor else None
    newest = after
    for source in TRIGGER_SOURCES:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", source]), after_storage_id=after),
            limit=1,
        ).records
        if records and (newest is None or records[0].storage_id > newest):
            newest = records[0].storage_id
    if newest is None or newest == after:
        return dg.SkipReason("no orders or receipts ingested since the last refresh")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"raw-{newest}")


@dg.definitions
def defs() -> dg.Definitions:
    # A bad setting fails the code location, naming it, rather than every dbt step.
    kept_target_invocations()
    return dg.Definitions(
        assets=[dbt_models, dbt_audiences]
        if _has_ml_audiences(json.loads(dbt_project.manifest_path.read_text()))
        else [dbt_models],
        jobs=[refresh_triggers],
        sensors=[refresh_triggers_on_landing],
        resources={"dbt": dbt_resource()},
    )

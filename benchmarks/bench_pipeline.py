"""The nightly pipeline at scale: every stage timed, peak memory per stage, and five ratios.

`make bench` (default 1M customers x 365 days; `make bench CUSTOMERS=100000`). Not part of
the tests. Each stage runs in its own process, so its peak RSS is its own: `os.wait4` gives the
largest single process of the stage (dbt runs as a child of the Dagster process), and a sampler
adds up the whole process tree every 0.2 s (Dagster and dbt are alive at the same time).

What runs, on a fresh warehouse under `data/bench/<key>/run/` (landing data is generated once
per seed, scale and generator code, then reused):

1. full build over every day but the last: ingestion (`cdp run`'s path), then the product's
   `nightly_build` job, launched as its schedule launches it (one run, the job's executor):
   staging + identity + customer view, lifecycle marts + triggers, churn model + scores,
   recommendations, audience models, each step timed; then campaign planning (dry run, every
   campaign) through Dagster `materialize`;
2. nightly: the last day lands; ingestion of the new date (what the landing sensor launches),
   `nightly_build` again and planning, as of that day. Ratio: nightly / full build;
3. trigger latency: one hour of new online orders lands in the next date folder; ingestion
   of that partition + the dbt path from orders to `fct_trigger_events`, until the rows exist;
4. orchestration overhead: the nightly's dbt steps through Dagster vs the same SQL without
   either: every statement dbt sent, replayed in order in one DuckDB connection, which also
   times every model and profiles the heaviest statements (`EXPLAIN (ANALYZE, FORMAT json)`,
   in `run/profile/`);
5. pandas vs dbt: the RFM, lifecycle-stage and revenue-contribution models vs
   `benchmarks/pandas_lifecycle.py`, outputs asserted equal;
6. scaling: the full build against the same benchmark at a tenth of the customers (run
   first unless its results exist).

Results: `data/bench/<key>/results.json` and `results.md` (printed at the end), and a copy of
both per run in `data/bench/<key>/history/`. With `--keep-snapshot` the warehouse as the
nightly's dbt steps found it is kept in `data/bench/<key>/prenightly/`, for
`benchmarks/replay_nightly.py` (one change measured on the nightly without a whole bench).

    .venv/bin/python benchmarks/bench_pipeline.py --customers 100000 --days 365
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Fixed so the same seed and scale always give the same data (reusable across runs).
END_DATE = dt.date(2026, 11, 22)
# The path from new orders to their triggers is the `refresh_triggers` job (dbt tag
# trigger_path): the incremental order models attribute the new orders through last night's
# identifier map and the trigger rules record what fired; no tests, no identity rebuild.
PANDAS_MODELS = (
    "int_customer_purchase_days",
    "int_customers_rfm_scored",
    "int_customers_lifecycle_staged",
    "rpt_revenue_contribution",
)
# Written by a Python step between the customer view's two dbt steps (Splink). The replay
# takes them as the nightly wrote them, before it starts timing.
BETWEEN_DBT_STEPS = ("intermediate.identity_probabilistic_links",)
# Incremental models the trigger-latency stage (run between the nightly and the replay) does
# not touch: after the replay they must equal what dbt left.
REPLAY_COMPARED = (
    "intermediate.int_identity_observations",
    "intermediate.int_identity_edges_deterministic",
    "intermediate.int_identity_components_deterministic",
    "intermediate.int_identity_customer_id_map",
)
# The product's nightly job (orchestration/defs/nightly/jobs.py); its dbt steps that build
# dbt_models (before and after Splink) are the ones the direct replay replays.
NIGHTLY_BUILD = "nightly_build"
REPLAYED_DBT_STEPS = "dbt_models"
TARGETS = {
    "orchestration_overhead": ("<=", 1.3),
    "pandas_vs_dbt": (">=", 10.0),
    "incremental_vs_full": ("<=", 0.10),
    "scaling_time_10x_customers": ("<=", 11.0),
    "peak_rss_gb": ("<=", 4.0),
    "trigger_latency_seconds": ("<=", 30.0),
}


# --------------------------------------------------------------------------------------------
# stage bodies: each runs in its own process (`--stage NAME PARAMS RESULT`)


def _as_of_config(as_of: str) -> dict[str, Any]:
    """A dbt step's run config (DbtBuildConfig) computing as of `as_of`."""
    return {"config": {"as_of_date": as_of}}


class _Dagster:
    """The project's Definitions, loaded once per stage process."""

    def __init__(self) -> None:
        import dagster as dg

        from orchestration.definitions import defs as build_defs

        self.dg = dg
        defs = build_defs()
        # Asset checks defined on their own (the ML checks) run too, as in a deployment.
        self.assets = [*(defs.assets or []), *(defs.asset_checks or [])]
        self.resources = dict(defs.resources or {})
        self.defs = defs
        self.graph = defs.resolve_asset_graph()
        self.instance = dg.DagsterInstance.ephemeral()

    def trigger_path(self) -> set[Any]:
        """The assets of the `refresh_triggers` job."""
        job = self.defs.resolve_job_def("refresh_triggers")
        return set(job.asset_layer.executable_asset_keys)

    def with_checks(self, keys: set[Any], built_before: set[Any]) -> Any:
        """The assets and the checks that can run once they are built: a check whose asset or
        other inputs (a relationships test's parent) are built later runs in that later stage,
        so each check runs once, when everything it reads is fresh."""
        ready = keys | built_before
        checks = set()
        for asset in self.assets:
            for spec in getattr(asset, "check_specs", ()):
                reads = {spec.asset_key} | {d.asset_key for d in spec.additional_deps}
                if reads & keys and reads <= ready:
                    checks.add(spec.key)
        selection = self.dg.AssetSelection.assets(*keys).without_checks()
        return selection | self.dg.AssetSelection.checks(*checks) if checks else selection

    def available(self, keys: set[Any]) -> set[Any]:
        known = set(self.graph.get_all_asset_keys())
        return {k for k in keys if k in known}

    def materialize(
        self,
        selection: Any,
        ops: dict[str, Any] | None = None,
        partition_key: str | None = None,
    ) -> tuple[float, Any]:
        from orchestration.runner import QUIET_RUN_CONFIG, _failure_message

        run_config = dict(QUIET_RUN_CONFIG)
        if ops:
            run_config["ops"] = ops
        started = time.perf_counter()
        result = self.dg.materialize(
            self.assets,
            selection=selection,
            resources=self.resources,
            instance=self.instance,
            run_config=run_config,
            partition_key=partition_key,
            tags={"cdp/entrypoint": "bench"},
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(_failure_message(result))
        return seconds, result

    @staticmethod
    def step_seconds(result: Any) -> dict[str, float]:
        """How long each step of a run took (a dbt step, the Splink step, an ML step)."""
        steps: dict[str, float] = {}
        for event in result.all_events:
            if event.is_step_success and event.step_key:
                duration = getattr(event.event_specific_data, "duration_ms", None) or 0.0
                steps[event.step_key] = round(steps.get(event.step_key, 0.0) + duration / 1000, 1)
        return steps


def _dbt_target_runs(target_root: Path, since: float) -> list[dict[str, Any]]:
    """Summaries of the dbt invocations dagster-dbt made under DBT_TARGET_PATH since `since`."""
    runs = []
    # In the order the invocations finished (their folder names do not sort that way).
    for path in sorted(target_root.glob("*/run_results.json"), key=lambda p: p.stat().st_mtime):
        if path.stat().st_mtime < since:
            continue
        results = json.loads(path.read_text())
        nodes = results["results"]
        models = sorted(
            (r for r in nodes if r["unique_id"].startswith("model.")),
            key=lambda r: -r["execution_time"],
        )
        runs.append(
            {
                "target": str(path.parent),
                "dbt_elapsed_seconds": round(results["elapsed_time"], 2),
                "nodes": len(nodes),
                "models": len(models),
                "tests": sum(1 for r in nodes if r["unique_id"].startswith("test.")),
                "unit_tests": sum(1 for r in nodes if r["unique_id"].startswith("unit_test.")),
                "node_seconds": round(sum(r["execution_time"] for r in nodes), 2),
                "slowest_models": [
                    [r["unique_id"].split(".")[-1], round(r["execution_time"], 2)]
                    for r in models[:8]
                ],
                # Every model, so two runs can be compared model by model (history/).
                "model_seconds": {
                    r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in models
                },
            }
        )
    return runs


def stage_generate(params: dict[str, Any]) -> dict[str, Any]:
    import datagen

    summary = datagen.generate(
        params["out"],
        customers=params["customers"],
        days=params["days"],
        seed=params["seed"],
        end_date=dt.date.fromisoformat(params["end_date"]),
    )
    return {"rows": summary.rows, "files": summary.files}


def stage_ingest_all(params: dict[str, Any]) -> dict[str, Any]:
    from orchestration.runner import run_pipeline

    result = run_pipeline(
        Path(params["landing"]), Path(params["warehouse"]), include_downstream=False
    )
    failed = [f"{s.name}: {s.error}" for s in result.stages if not s.success]
    if failed:
        raise RuntimeError("; ".join(failed))
    return {
        "sources": {s.name: round(s.seconds, 1) for s in result.stages},
        "raw_rows": _raw_rows(Path(params["warehouse"])),
    }


def stage_ingest_date(params: dict[str, Any]) -> dict[str, Any]:
    """One run per source for the new date partition, as the landing sensor launches them."""
    from orchestration.ingestion.contract import SOURCES

    dagster = _Dagster()
    landing = Path(params["landing"])
    sources = {}
    for source in SOURCES:
        if not (landing / source / params["date"]).is_dir():
            continue
        seconds, _ = dagster.materialize(
            [dagster.dg.AssetKey(["raw", source])], partition_key=params["date"]
        )
        sources[f"raw/{source}"] = round(seconds, 1)
    return {"sources": sources}


def nightly_build_job() -> Any:
    """The job as a code location defines it; `reconstructable` needs a module-level function
    (a multiprocess executor's step processes load the job from it)."""
    from orchestration.definitions import defs as build_defs

    return build_defs().resolve_job_def(NIGHTLY_BUILD)


def stage_build(params: dict[str, Any]) -> dict[str, Any]:
    """`nightly_build` as its schedule launches it: one run on a persistent instance with the
    project's dagster.yaml (the duckdb pool), through the job's own executor, every dbt step
    as of `as_of`. Step seconds come from the run's events."""
    import dagster as dg

    from orchestration.runner import QUIET_RUN_CONFIG, _failure_message, instance_for_cli

    # The stage's own DAGSTER_HOME, set up as `cdp run` sets one up (the project's dagster.yaml).
    os.environ["DAGSTER_HOME"] = params["dagster_home"]
    job = nightly_build_job()
    # dagster-dbt names the dbt steps dbt_models, dbt_models_2, ... as the job splits them.
    dbt_steps = [n.name for n in job.graph.nodes if n.name.startswith(("dbt_models", "dbt_aud"))]
    run_config = {
        **QUIET_RUN_CONFIG,
        "ops": {step: _as_of_config(params["as_of"]) for step in dbt_steps},
    }
    started_at = time.time()
    started = time.perf_counter()
    with instance_for_cli() as instance:
        result = dg.execute_job(
            dg.reconstructable(nightly_build_job),
            instance=instance,
            run_config=run_config,
            tags={"cdp/entrypoint": "bench"},
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(_failure_message(result))
        return {
            "job": NIGHTLY_BUILD,
            "executor": job.executor_def.name,
            "assets": len(job.asset_layer.executable_asset_keys),
            "materialize_seconds": round(seconds, 1),
            "steps": _Dagster.step_seconds(result),
            "step_windows": _step_windows(instance, result.run_id),
            "dbt": _dbt_target_runs(Path(os.environ["DBT_TARGET_PATH"]), started_at),
        }


def _step_windows(instance: Any, run_id: str) -> dict[str, list[float]]:
    """When each step of a run started and ended (epoch seconds, from its event log)."""
    import dagster as dg

    windows: dict[str, list[float]] = {}
    events = instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        },
    )
    for entry in events:
        step = entry.step_key
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            windows[step] = [entry.timestamp, entry.timestamp]
        elif step in windows:
            windows[step][1] = entry.timestamp
    return windows


def _planning_assets(dagster: _Dagster) -> set[Any]:
    """Activation planning assets, when the activation domain defines them."""
    return {
        key
        for key in dagster.graph.get_all_asset_keys()
        if key.path[0] == "activation" and "plan" in key.path[-1]
    }


def stage_planning(params: dict[str, Any]) -> dict[str, Any]:
    """Every campaign planned in dry run: consent, suppressions, caps, holdout, variants and
    previews; nothing is sent (ACTIVATION_MODE=dry_run is forced for the stage)."""
    dagster = _Dagster()
    planning = _planning_assets(dagster)
    if planning:
        everything = set(dagster.graph.get_all_asset_keys())
        seconds, result = dagster.materialize(dagster.with_checks(planning, everything - planning))
        return {
            "planning": "Dagster assets activation/<campaign>/plan",
            "campaigns": len(planning),
            "materialize_seconds": round(seconds, 1),
            "steps": dagster.step_seconds(result),
        }
    return {
        "planning": "activations.plan.plan_campaign per campaign (no Dagster plan assets)",
        "campaigns": _plan_campaigns(Path(params["warehouse"]), params["as_of"]),
    }


def _plan_campaigns(warehouse: Path, as_of: str) -> dict[str, Any]:
    import uuid

    import duckdb

    from activations.plan import plan_campaign
    from activations.spec import ActivationSettings, load_campaigns
    from orchestration.defs.transform.project import dbt_project

    campaigns = load_campaigns(json.loads(dbt_project.manifest_path.read_text()))
    # The nightly run plans at 02:00 UTC the morning after the as-of date.
    now = dt.datetime.combine(
        dt.date.fromisoformat(as_of) + dt.timedelta(days=1), dt.time(2), tzinfo=dt.UTC
    )
    run_id = uuid.uuid4().hex
    planned: dict[str, Any] = {}
    with duckdb.connect(str(warehouse)) as con:
        for campaign in campaigns:
            occasion = f"bench-{as_of}" if campaign.spec.is_event else as_of
            started = time.perf_counter()
            report = plan_campaign(
                con,
                campaign,
                occasion=occasion,
                run_id=run_id,
                now=now,
                settings=ActivationSettings(),
            )
            planned[campaign.name] = {
                "seconds": round(time.perf_counter() - started, 2),
                "audience_rows": report.audience_rows,
                "planned": report.planned,
                "holdout": report.holdout,
            }
    return planned


def stage_latency(params: dict[str, Any]) -> dict[str, Any]:
    """New orders for one hour land; time until their trigger rows are in fct_trigger_events."""
    import duckdb

    loaded = time.perf_counter()
    dagster = _Dagster()
    startup = time.perf_counter() - loaded
    landing, date = Path(params["landing"]), params["date"]
    orders = _write_hour_of_orders(landing, Path(params["generated"]), params["source_date"], date)
    landed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    started = time.perf_counter()
    raw = [
        dagster.dg.AssetKey(["raw", "online_orders"]),
        dagster.dg.AssetKey(["raw", "online_order_lines"]),
    ]
    ingest_seconds, _ = dagster.materialize(raw, partition_key=date)
    dbt_started = time.time()
    path = dagster.available(dagster.trigger_path())
    # As the refresh_triggers job runs it: the tagged models, without their tests.
    from orchestration.defs.transform.assets import ORDER_TRIGGER_RULES

    config = _as_of_config(date)
    config["config"].update(tests=False, trigger_rules=ORDER_TRIGGER_RULES)
    dbt_seconds, _ = dagster.materialize(
        dagster.dg.AssetSelection.assets(*path).without_checks(), ops={"dbt_models": config}
    )
    with duckdb.connect(params["warehouse"], read_only=True) as con:
        # Triggers caused by the new orders, and the others this run recorded (time-based
        # triggers that came due since last night, e.g. carts abandoned 24 h ago).
        fired = con.execute(
            """
            select trigger_type, count(*) filter (where cause_id in (
                select order_id from marts.fct_orders where source_order_id like 'BENCH-%'
            )), count(*)
            from marts.fct_trigger_events where recorded_at >= $landed
            group by all order by all
            """,
            {"landed": landed_at},
        ).fetchall()
    total = time.perf_counter() - started
    return {
        "orders_landed": orders,
        "latency_seconds": round(total, 1),
        "ingestion_seconds": round(ingest_seconds, 1),
        "dbt_seconds": round(dbt_seconds, 1),
        "process_startup_seconds": round(startup, 1),
        "models": [k.path[-1] for k in sorted(path, key=lambda k: k.to_user_string())],
        "triggers_from_new_orders": {t: n for t, n, _ in fired if n},
        "other_triggers_recorded": {t: total - n for t, n, total in fired if total - n},
        "dbt": _dbt_target_runs(Path(os.environ["DBT_TARGET_PATH"]), dbt_started),
    }


def _write_hour_of_orders(landing: Path, generated: Path, source_date: str, date: str) -> int:
    """Copy the busiest hour of the last landed day's online orders to `date`, with new ids."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    def read(source: str) -> pa.Table:
        files = sorted((generated / source / source_date).glob("*.csv*"))
        text = pa.string()
        tables = [
            pcsv.read_csv(
                f,
                convert_options=pcsv.ConvertOptions(
                    column_types={"order_id": text, "ordered_at": text}, strings_can_be_null=True
                ),
            )
            for f in files
        ]
        return pa.concat_tables(tables)

    orders = read("online_orders")
    hours = pc.utf8_slice_codeunits(orders["ordered_at"], 11, 13)
    counts = pc.value_counts(hours).to_pylist()
    busiest = max(counts, key=lambda c: (c["counts"], c["values"] or ""))["values"]
    hour = orders.filter(pc.equal(hours, busiest))
    new_day = dt.date.fromisoformat(date)
    shifted = []
    for value in hour["ordered_at"].to_pylist():
        stamp = dt.datetime.fromisoformat(value)
        shifted.append(
            dt.datetime.combine(new_day, stamp.timetz()).isoformat()
            if stamp.tzinfo
            else dt.datetime.combine(new_day, stamp.time()).isoformat()
        )
    ids = hour["order_id"].to_pylist()
    # Unique per landing, so a repeated measurement lands new orders, not re-exports.
    batch = f"{int(time.time()) % 100_000:05d}"
    renamed = {old: f"BENCH-{date}-{batch}-{old}" for old in ids}
    hour = hour.set_column(
        hour.schema.get_field_index("ordered_at"), "ordered_at", pa.array(shifted)
    ).set_column(
        hour.schema.get_field_index("order_id"), "order_id", pa.array([renamed[i] for i in ids])
    )
    lines = read("online_order_lines")
    lines = lines.filter(pc.is_in(lines["order_id"], pa.array(ids)))
    lines = lines.set_column(
        lines.schema.get_field_index("order_id"),
        "order_id",
        pa.array([renamed[i] for i in lines["order_id"].to_pylist()]),
    )
    for source, table in (("online_orders", hour), ("online_order_lines", lines)):
        folder = landing / source / date
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{source}.csv.gz.part"
        with gzip.open(tmp, "wb") as handle:
            pcsv.write_csv(table, handle)
        # Landing writers rename a finished file into place; the loader ignores hidden files.
        tmp.rename(folder / f"{source}_hour_{batch}.csv.gz")
    return hour.num_rows


_TRANSACTION_CONTROL = {"begin", "commit", "rollback"}


def dbt_statements(log: Path) -> list[dict[str, Any]]:
    """Every SQL statement a dbt invocation sent to the warehouse, in the order it sent them,
    with dbt's own time for each, from its JSON debug log (dagster-dbt writes one per run)."""
    statements: list[dict[str, Any]] = []
    open_by_thread: dict[str, int] = {}
    with log.open() as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            info, data = event.get("info", {}), event.get("data", {})
            if info.get("name") == "SQLQuery":
                statements.append(
                    {"sql": data["sql"], "node": data.get("conn_name", ""), "dbt_seconds": 0.0}
                )
                open_by_thread[info.get("thread", "")] = len(statements) - 1
            elif info.get("name") == "SQLQueryStatus":
                index = open_by_thread.pop(info.get("thread", ""), None)
                if index is not None:
                    statements[index]["dbt_seconds"] = float(data.get("elapsed") or 0.0)
    return statements


def _statement_body(sql: str) -> str:
    body = sql.strip()
    while body.startswith("/*"):
        body = body[body.find("*/") + 2 :].strip()
    return body.rstrip(";").strip().lower()


def stage_direct_sql(params: dict[str, Any]) -> dict[str, Any]:
    """The SQL of a dbt build without dbt or Dagster: every statement dbt sent (models, the
    identity label-propagation rounds, contract DDL and renames, tests, catalog queries),
    replayed in one DuckDB connection in the order dbt issued them (on however many threads),
    which respects every dependency. The slowest statements (by dbt's own timing) are run
    under EXPLAIN ANALYZE, which executes them the same way and keeps their profile."""
    import duckdb

    statements = [
        statement
        for target in params["targets"]
        for statement in dbt_statements(Path(target) / "dbt.log")
    ]
    if not statements:
        raise RuntimeError(f"no SQL statements in the dbt.log of {params['targets']}")
    heavy = set(
        sorted(
            (i for i, s in enumerate(statements) if s["node"].startswith("model.")),
            key=lambda i: -statements[i]["dbt_seconds"],
        )[: params["profile_top"]]
    )
    profile_dir = Path(params["profile_dir"])
    profile_dir.mkdir(parents=True, exist_ok=True)
    by_node: dict[str, float] = {}
    dbt_by_node: dict[str, float] = {}
    profiles = []
    replayed = 0
    live, compared = params.get("live_warehouse"), params.get("compare_tables", [])
    watermarks = _prepare_copy(params["warehouse"], live, params.get("copy_tables", []), compared)
    started = time.perf_counter()
    with duckdb.connect(params["warehouse"]) as con:
        # The profile's settings (profiles.yml); the rest are DuckDB defaults, as for dbt.
        con.execute("set TimeZone = 'UTC'")
        con.execute("set preserve_insertion_order = false")
        limit = params.get("memory_limit") or os.environ.get("DUCKDB_MEMORY_LIMIT", "2.5GB")
        if limit:
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit):
                raise ValueError(
                    f"--replay-memory-limit must look like 3GB or 512MiB, not {limit!r}"
                )
            con.execute(f"set memory_limit = '{limit}'")
        for index, statement in enumerate(statements):
            if _statement_body(statement["sql"]) in _TRANSACTION_CONTROL:
                continue
            node = statement["node"]
            statement_started = time.perf_counter()
            try:
                if index in heavy:
                    plan = _explain_analyze(con, statement["sql"])
                else:
                    plan = None
                    con.execute(statement["sql"]).fetchall()
            except duckdb.Error as error:
                raise RuntimeError(
                    f"statement {index} of {node} failed when replayed: {error}\n"
                    f"{statement['sql'][:1500]}"
                ) from error
            seconds = time.perf_counter() - statement_started
            replayed += 1
            by_node[node] = by_node.get(node, 0.0) + seconds
            dbt_by_node[node] = dbt_by_node.get(node, 0.0) + statement["dbt_seconds"]
            if plan is not None:
                profiles.append(_profile_summary(node, seconds, plan, profile_dir, len(profiles)))
    total = time.perf_counter() - started
    models = sorted((n for n in by_node if n.startswith("model.")), key=lambda n: -by_node[n])
    same_as_dbt, rewritten = _check_copy(params["warehouse"], live, compared, watermarks)

    def kind_seconds(prefix: str) -> float:
        return round(sum(s for n, s in by_node.items() if n.startswith(prefix)), 1)

    return {
        "direct_seconds": round(total, 1),
        "statements": replayed,
        "dbt_statement_seconds": round(sum(s["dbt_seconds"] for s in statements), 1),
        "model_seconds": kind_seconds("model."),
        "test_seconds": kind_seconds("test."),
        "unit_test_seconds": kind_seconds("unit_test."),
        "slowest_models": [
            [n.split(".")[-1], round(by_node[n], 2), round(dbt_by_node[n], 2)] for n in models[:10]
        ],
        "profiles": profiles,
        "replayed_tables_equal_dbt": same_as_dbt,
        "rows_rewritten_by_replay": rewritten,
    }


def _with_wal(database: Path) -> tuple[Path, Path]:
    """A DuckDB file and its write-ahead log, which holds commits not yet checkpointed."""
    return database, database.with_name(database.name + ".wal")


def _has_column(
    con: Any, table: str, column: str | None = None, catalog: str | None = None
) -> bool:
    """Whether `table` (schema.name) exists, with `column` when one is named, in the
    connection's default catalog or in `catalog`."""
    schema, name = table.split(".")
    sql = (
        "select count(*) from information_schema.columns where table_schema = ? "
        "and table_name = ? and table_catalog = coalesce(?, current_database())"
    )
    values: list[Any] = [schema, name, catalog]
    if column is not None:
        sql += " and column_name = ?"
        values.append(column)
    return con.execute(sql, values).fetchone()[0] > 0


def _prepare_copy(
    warehouse: str, live: str | None, copy_tables: list[str], compared: list[str]
) -> dict[str, Any]:
    """Before the replay, untimed: copy `copy_tables` (schema.name) from the live warehouse into
    the replay's copy (what a step other than dbt wrote between the dbt steps being replayed; a
    table the live warehouse lacks is dropped, as the step would have left it), and return the
    latest `refreshed_at` of each compared table that has one."""
    import duckdb

    with duckdb.connect(warehouse) as con:
        if live:
            con.execute(f"attach '{live}' as live (read_only)")
            for table in copy_tables:
                if _has_column(con, table, catalog="live"):
                    con.execute(f"create schema if not exists {table.split('.')[0]}")
                    con.execute(f"create or replace table {table} as select * from live.{table}")
                else:
                    con.execute(f"drop table if exists {table}")
        return {
            table: con.execute(f"select max(refreshed_at) from {table}").fetchone()[0]
            for table in compared
            if _has_column(con, table, "refreshed_at")
        }


def _check_copy(
    warehouse: str, live: str | None, compared: list[str], watermarks: dict[str, Any]
) -> tuple[dict[str, bool] | None, dict[str, int]]:
    """After the replay: whether it left each compared table as dbt left the live warehouse
    (row count and a hash of every column but the run timestamps), and how many rows it
    rewrote in each (its incremental work, which dbt's log reports for the same run)."""
    import duckdb

    def fingerprint(con: Any, table: str) -> tuple:
        return con.execute(
            f"select count(*), sum(hash(columns(c -> c not like '%refreshed_at'))) from {table}"
        ).fetchone()

    with duckdb.connect(warehouse, read_only=True) as con:
        same = None
        if live:
            con.execute(f"attach '{live}' as live (read_only)")
            same = {t: fingerprint(con, t) == fingerprint(con, f"live.{t}") for t in compared}
        rewritten = {
            table: con.execute(
                f"select count(*) from {table} where refreshed_at > ?", [mark]
            ).fetchone()[0]
            for table, mark in watermarks.items()
            if mark is not None
        }
    return same, rewritten


def _explain_analyze(con: Any, sql: str) -> str | None:
    """Run `sql` under EXPLAIN ANALYZE (same effects, plus a profile) and return the profile of
    its most expensive statement; dbt sends some as several (contract DDL, then the insert)."""
    import duckdb

    best: tuple[float, str] | None = None
    for part in duckdb.extract_statements(sql):
        try:
            rows = con.execute(f"explain (analyze, format json) {part.query}").fetchall()
        except duckdb.ParserException:
            # Statements EXPLAIN does not take (plain DDL) run as they are.
            con.execute(part.query).fetchall()
            continue
        plan = rows[0][-1] if rows and rows[0] else None
        if plan:
            latency = float(json.loads(plan).get("latency") or 0.0)
            if best is None or latency > best[0]:
                best = (latency, plan)
    return best[1] if best else None


def _profile_summary(node: str, seconds: float, plan: str, out: Path, rank: int) -> dict[str, Any]:
    """The heaviest operators of one EXPLAIN ANALYZE profile; the whole profile is kept."""
    name = node.split(".")[-1]
    path = out / f"{rank + 1}_{name}.json"
    path.write_text(plan)
    profile = json.loads(plan)
    operators: list[dict[str, Any]] = []

    def walk(op: dict[str, Any]) -> None:
        if op.get("operator_type") and op.get("operator_type") != "EXPLAIN_ANALYZE":
            info = op.get("extra_info") or {}
            detail = (
                info.get("Join Type")
                or info.get("Aggregates")
                or info.get("Table")
                or info.get("Function")
                or ""
            )
            if isinstance(detail, list):
                detail = ", ".join(map(str, detail))
            operators.append(
                {
                    "operator": str(op.get("operator_name") or op["operator_type"]).strip(),
                    "seconds": round(float(op.get("operator_timing") or 0.0), 2),
                    "rows": op.get("operator_cardinality"),
                    "detail": str(detail).replace("\n", " ")[:90],
                }
            )
        for child in op.get("children", []):
            walk(child)

    walk(profile)
    operators.sort(key=lambda o: -o["seconds"])
    summary = {
        "model": name,
        "statement_seconds": round(seconds, 2),
        "cpu_seconds": round(float(profile.get("cpu_time") or 0.0), 2),
        # Memory the statement's buffer manager allocated in total (not a peak). DuckDB's
        # system_peak_buffer_memory is the whole instance's peak since it opened, the same
        # figure for every statement of a replay: kept for reference, not shown per statement.
        "allocated_memory_mb": round((profile.get("total_memory_allocated") or 0) / 2**20),
        "instance_peak_buffer_memory_mb": round(
            (profile.get("system_peak_buffer_memory") or 0) / 2**20
        ),
        "top_operators": operators[:6],
        "profile": str(path),
    }
    path.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _order_trigger_rules() -> list[str]:
    from orchestration.defs.transform.assets import ORDER_TRIGGER_RULES

    return list(ORDER_TRIGGER_RULES)


def stage_dbt_cli(params: dict[str, Any]) -> dict[str, Any]:
    """`dbt run` of the models pandas reimplements, timed as dbt itself (no Dagster)."""
    from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

    target = Path(os.environ["DBT_TARGET_PATH"])
    common = ["--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target)]
    dbt_vars = ["--vars", json.dumps({"as_of_date": params["as_of"]})]
    # Parsing a project from scratch is a one-off, not model time: parse first, untimed, with
    # the same vars (other vars make the run parse everything again).
    _dbt([DBT_EXECUTABLE, "parse", "--quiet", *dbt_vars, *common])
    started = time.perf_counter()
    # --full-refresh: pandas computes every customer from scratch, so dbt must too. Run
    # incrementally after the nightly, the purchase days would be recomputed for the few
    # customers whose orders changed since, and the ratio would compare unlike work.
    _dbt(
        [
            DBT_EXECUTABLE,
            "run",
            "--full-refresh",
            "--select",
            *params["models"],
            *dbt_vars,
            *common,
        ]
    )
    seconds = time.perf_counter() - started
    results = json.loads((target / "run_results.json").read_text())
    return {
        "dbt_seconds": round(seconds, 2),
        "dbt_elapsed_seconds": round(results["elapsed_time"], 2),
        "model_seconds": round(sum(r["execution_time"] for r in results["results"]), 2),
    }


def _dbt(command: list[str]) -> None:
    from orchestration.defs.transform.project import DBT_PROJECT_DIR

    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout[-3000:]}")


def stage_pandas(params: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    import pandas_lifecycle

    return pandas_lifecycle.run(Path(params["warehouse"]), dt.date.fromisoformat(params["as_of"]))


STAGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": stage_generate,
    "ingest_all": stage_ingest_all,
    "ingest_date": stage_ingest_date,
    "build": stage_build,
    "planning": stage_planning,
    "latency": stage_latency,
    "direct_sql": stage_direct_sql,
    "dbt_cli": stage_dbt_cli,
    "pandas": stage_pandas,
}


def _run_stage_here(name: str, params_file: Path, result_file: Path) -> None:
    params = json.loads(params_file.read_text())
    try:
        details = STAGES[name](params)
        result_file.write_text(json.dumps({"ok": True, "details": details}, default=str))
    except Exception as error:
        result_file.write_text(
            json.dumps(
                {
                    "ok": False,
                    "error": f"{type(error).__name__}: {error}"[:4000],
                    "traceback": traceback.format_exc()[-4000:],
                }
            )
        )
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# the parent: runs stages in child processes and measures them


def _raw_rows(warehouse: Path) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and table_name not like '\\_%' escape '\\'"
        ).fetchall()
        return sum(con.execute(f'select count(*) from raw."{t}"').fetchone()[0] for (t,) in tables)


def _tree_rss_bytes(root_pid: int) -> tuple[int, int]:
    """Resident memory of a process and all its descendants, and of the process alone, from
    /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, root, stack, page = 0, 0, [root_pid], os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                resident = int(handle.read().split()[1]) * page
        except OSError:
            resident = 0
        total += resident
        if pid == root_pid:
            root = resident
        stack.extend(children.get(pid, []))
    return total, root


def _step_peaks(
    samples: list[tuple[float, int, int]], windows: dict[str, list[float]]
) -> dict[str, dict[str, int]]:
    """Peak RSS (MB) of the run's process and of its process tree (with the dbt processes it
    started) while each step ran, from the samples taken during the stage and the steps'
    start and end times."""
    peaks = {}
    for step, (start, end) in windows.items():
        during = [(tree, own) for at, tree, own in samples if start <= at <= end]
        if during:
            peaks[step] = {
                "process": round(max(own for _, own in during) / 2**20),
                "tree": round(max(tree for tree, _ in during) / 2**20),
            }
    return peaks


def code_version() -> str | None:
    """The commit the benchmark ran (short hash), "-dirty" when tracked files were changed,
    None outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if changed else commit


def baseline_reusable(results: Path, code: str | None) -> bool:
    """The scaling ratio compares the same code at two scales: a baseline's results are reused
    only when they record this very commit. A working tree with changes has no name, so its
    baseline is always run again."""
    return (
        results.exists()
        and code is not None
        and not code.endswith("-dirty")
        and json.loads(results.read_text()).get("code") == code
    )


# Modules of datagen/ that read generated data and never write it: changing them must not make
# the bench regenerate a million customers.
NOT_GENERATOR = {"ceiling.py"}


def generator_fingerprint() -> str:
    """sha256 (first 16 hex digits) of the demo data generator's source files."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "datagen").glob("*.py")):
        if path.name in NOT_GENERATOR:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class RunDir:
    """The files of one pipeline run (warehouse, landing, model artefacts, dbt targets,
    previews) and the environment every stage process of the run gets. The bench's `run/` and
    a nightly replay's copy (replay_nightly.py) are laid out alike."""

    # Not a dataclass: the tests load this file by path, without a sys.modules entry, which
    # dataclasses needs to resolve postponed annotations.
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def warehouse(self) -> Path:
        return self.path / "warehouse.duckdb"

    @property
    def landing(self) -> Path:
        return self.path / "landing"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def dbt_target(self) -> Path:
        return self.path / "dbt_target"

    @property
    def previews(self) -> Path:
        return self.path / "previews"

    def env(self, label: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("GROUND_TRUTH_DIR", None)
        env.update(
            {
                "DAGSTER_HOME": "",
                "DUCKDB_PATH": str(self.warehouse),
                "LANDING_DIR": str(self.landing),
                "MODEL_DIR": str(self.models),
                "DBT_TARGET_PATH": str(self.dbt_target / label),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(ROOT),
                # Planning is timed in dry run whatever the shell says: nothing may be sent.
                "ACTIVATION_MODE": "dry_run",
                "ACTIVATION_PREVIEW_DIR": str(self.previews),
            }
        )
        return env

    def parse_dbt(self, label: str, dbt_vars: dict[str, Any]) -> None:
        """`dbt parse` into the stage's DBT_TARGET_PATH with the vars its dbt invocations pass,
        untimed: a deployment parses once when it is deployed, and dagster-dbt copies that
        partial_parse.msgpack into every invocation's target (`make manifest` does it for a
        local install). Without it every invocation here would parse the project from scratch
        (about 4 s each), which production does not, since only the bench pins as_of_date."""
        from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

        command = [DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_PROJECT_DIR)]
        if dbt_vars:
            command += ["--vars", json.dumps(dbt_vars)]
        done = subprocess.run(
            command, cwd=DBT_PROJECT_DIR, env=self.env(label), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"dbt parse for {label} failed:\n{done.stdout[-3000:]}")


def run_stage(
    home: Path,
    run: RunDir,
    label: str,
    kind: str,
    params: dict[str, Any],
    phase: str,
    dbt_vars: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One stage in a child process (`--stage KIND PARAMS RESULT`) with `run`'s environment,
    its params, result and log under `home`: its record (seconds, peak RSS, details)."""
    if dbt_vars is not None:
        run.parse_dbt(label, dbt_vars)
    stages = home / "stages"
    stages.mkdir(parents=True, exist_ok=True)
    params_file, result_file = stages / f"{label}.params.json", stages / f"{label}.json"
    params_file.write_text(json.dumps(params))
    result_file.unlink(missing_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {phase}: {label} ...", flush=True)
    log = home / "logs" / f"{label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, __file__, "--stage", kind, str(params_file), str(result_file)],
            cwd=ROOT,
            env=run.env(label),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append((time.time(), *_tree_rss_bytes(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): the stage must not outlive the benchmark.
        process.kill()
        process.wait()
        raise
    finally:
        stop.set()
    sampler.join()
    seconds = time.perf_counter() - started
    outcome = json.loads(result_file.read_text()) if result_file.exists() else {}
    details = outcome.get("details", {})
    if "step_windows" in details:
        details["step_peak_rss_mb"] = _step_peaks(samples, details.pop("step_windows"))
    record = {
        "phase": phase,
        "stage": label,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "peak_tree_rss_mb": round(max((tree for _, tree, _ in samples), default=0) / 2**20),
        "ok": status == 0 and outcome.get("ok", False),
        "details": details,
    }
    if run.warehouse.exists():
        # Disk is a resource too: the warehouse file and its write-ahead log after the stage.
        record["warehouse_gb"] = round(
            sum(f.stat().st_size for f in _with_wal(run.warehouse) if f.exists()) / 1e9, 2
        )
    if not record["ok"]:
        record["error"] = outcome.get("error") or f"exit status {status}"
        print(f"    FAILED: {record['error'][:600]} (log: {log})", flush=True)
    else:
        skipped = record["details"].get("skipped")
        print(
            f"    {record['seconds']} s, peak RSS {record['peak_rss_mb']} MB "
            f"(tree {record['peak_tree_rss_mb']} MB){'; ' + skipped if skipped else ''}",
            flush=True,
        )
    return record


class PipelineStage(NamedTuple):
    name: str
    kind: str
    params: dict[str, Any]
    # The vars the stage's dbt invocations pass (see stage_build, _as_of_config), for the
    # untimed parse; None: the stage runs no dbt.
    dbt_vars: dict[str, Any] | None


def pipeline_stages(as_of: str, run: RunDir) -> list[PipelineStage]:
    """The stages after ingestion, in pipeline order, as of `as_of`: the nightly build job,
    then every campaign's plan (in a deployment each campaign's own scheduled job)."""
    return [
        PipelineStage(
            "build",
            "build",
            {"as_of": as_of, "dagster_home": str(run.path / "dagster_home")},
            {"as_of_date": as_of},
        ),
        PipelineStage(
            "planning", "planning", {"as_of": as_of, "warehouse": str(run.warehouse)}, None
        ),
    ]


def replayed_dbt_runs(build: dict[str, Any]) -> list[dict[str, Any]]:
    """The build stage's dbt invocations the direct replay replays (dagster-dbt names each
    invocation's target folder after its step)."""
    return [
        run
        for run in build["details"].get("dbt", [])
        if Path(run["target"]).name.startswith(REPLAYED_DBT_STEPS)
    ]


def nightly_outside_dbt_nodes(records: list[dict[str, Any]]) -> float | None:
    """Seconds of the nightly phase spent outside dbt's models and tests: ingestion, planning,
    the Splink and ML steps, and dbt's and Dagster's own time. The nightly cannot take less
    than this however fast its SQL gets, so this over the full build is the lowest
    `incremental_vs_full` that dbt work alone can reach."""
    nightly = [r for r in records if r.get("phase") == "nightly"]
    if not nightly or not all(r["ok"] for r in nightly):
        return None
    node_seconds = sum(
        run["node_seconds"] for r in nightly for run in (r.get("details") or {}).get("dbt", [])
    )
    return round(sum(r["seconds"] for r in nightly) - node_seconds, 1)


def link_date(landing: Path, date_dir: Path) -> None:
    """Land one generated date folder: a link to it in the landing tree (the loader follows
    links like folders)."""
    target = landing / date_dir.parent.name / date_dir.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(date_dir.resolve(), target_is_directory=True)


def prenightly_dir(home: Path) -> Path:
    """Where `--keep-snapshot` keeps the warehouse as the nightly's dbt steps found it, with
    the model artefacts of the full build and SNAPSHOT_RECORD: outside `run/`, which the next
    run recreates (replay_nightly.py replays nightly stages on copies of it)."""
    return home / "prenightly"


SNAPSHOT_RECORD = "snapshot.json"


def copy_database(source: Path, copy: Path) -> None:
    """Copy a DuckDB file with its write-ahead log, if it has one."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    for path, copied in zip(_with_wal(source), _with_wal(copy), strict=True):
        if path.exists():
            shutil.copyfile(path, copied)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.key = f"c{args.customers}_d{args.days}_s{args.seed}"
        self.home = args.work / self.key
        self.layout = RunDir(self.home / "run")
        self.run_dir = self.layout.path
        self.landing = self.layout.landing
        self.warehouse = self.layout.warehouse
        # DuckDB names a file's catalog after its stem, which the SQL dbt sent spells out.
        self.replay_warehouse = self.run_dir / "replay" / self.warehouse.name
        self.dbt_target = self.layout.dbt_target
        self.last_day = END_DATE
        self.first_as_of = (END_DATE - dt.timedelta(days=1)).isoformat()
        self.records: list[dict[str, Any]] = []
        self.baseline: dict[str, Any] | None = None

    def stage(
        self,
        label: str,
        kind: str,
        params: dict[str, Any],
        phase: str,
        dbt_vars: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        record = run_stage(self.home, self.layout, label, kind, params, phase, dbt_vars)
        self.records.append(record)
        return record

    # -- data

    def ensure_data(self) -> None:
        """Generate the data, or reuse what an earlier run generated with the same arguments
        and the same generator code: data from an older generator (a fixed bug, another
        distribution) would make the figures incomparable without anyone noticing."""
        manifest = self.home / "truth" / "manifest.json"
        previous = self.home / "generation.json"
        wanted = {
            "customers": self.args.customers,
            "days": self.args.days,
            "seed": self.args.seed,
            "end_date": END_DATE.isoformat(),
        }
        generator = generator_fingerprint()
        if manifest.exists():
            arguments = json.loads(manifest.read_text()).get("arguments", {})
            record = json.loads(previous.read_text()) if previous.exists() else {}
            if not all(arguments.get(k) == v for k, v in wanted.items()):
                print(
                    f"generated data in {self.home} has other arguments: regenerating", flush=True
                )
            elif record.get("generator_sha256") != generator:
                print(
                    f"generated data in {self.home} comes from other generator code "
                    f"({record.get('generator_sha256') or 'not recorded'}, now {generator}): "
                    "regenerating",
                    flush=True,
                )
            else:
                record.update({"phase": "data", "stage": "generation", "reused": True})
                self.records.append(record)
                print(f"reusing generated data in {self.home}", flush=True)
                return
        self.home.mkdir(parents=True, exist_ok=True)
        record = self.stage(
            "generation", "generate", {"out": str(self.home), **wanted}, phase="data"
        )
        if not record["ok"]:
            raise SystemExit(f"generation failed: {record.get('error')}")
        previous.write_text(json.dumps({**record, "generator_sha256": generator}))

    def fresh_run_dir(self) -> None:
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        # The landing folder is a tree of links to the generated date folders, so landing a
        # day is adding its links (the loader follows them like folders).
        for source_dir in sorted((self.home / "landing").iterdir()):
            for date_dir in sorted(source_dir.iterdir()):
                if date_dir.name != self.last_day.isoformat():
                    link_date(self.landing, date_dir)

    # -- phases

    def pipeline(self, phase: str, as_of: str, ingestion: tuple[str, dict[str, Any]]) -> None:
        kind, params = ingestion
        ingested = self.stage(f"{phase}-ingestion", kind, params, phase)
        if phase == "nightly":
            self.snapshot_for_replay()
            if self.args.keep_snapshot and ingested["ok"]:
                self.keep_prenightly(as_of)
            elif self.args.keep_snapshot:
                print("    pre-nightly snapshot not kept: the ingestion failed", flush=True)
        for stage in pipeline_stages(as_of, self.layout):
            self.stage(
                f"{phase}-{stage.name}", stage.kind, stage.params, phase, dbt_vars=stage.dbt_vars
            )

    def snapshot_for_replay(self) -> None:
        """Copy the warehouse as the nightly's dbt steps will find it, for the direct replay.
        Replayed on the warehouse those steps left behind, the incremental models would find
        their new day already consumed (their watermarks and change logs are read at run time)
        and do less work than dbt did; on this copy they do the same work. Untimed."""
        started = time.perf_counter()
        copy_database(self.warehouse, self.replay_warehouse)
        size = self.replay_warehouse.stat().st_size
        print(
            f"    warehouse copied for the replay: {size / 2**30:.2f} GiB in "
            f"{time.perf_counter() - started:.1f} s (untimed)",
            flush=True,
        )

    def keep_prenightly(self, as_of: str) -> None:
        """`--keep-snapshot`: keep the pre-nightly warehouse (the replay's copy is changed by the
        replay, then deleted) in prenightly_dir, with the model artefacts the full build left
        (the nightly's churn and recommendations read MODEL_DIR) and what a replay needs. The
        landing is not copied: the nightly's landing folder links to every date of the
        generated data in <home>/landing/, which outlives runs (the trigger-latency stage
        writes its orders into run/landing/ after the nightly); the generator's fingerprint
        says whether that data is still the same. Written beside, then renamed into place, so
        an interrupted copy never passes for a snapshot. Untimed."""
        started = time.perf_counter()
        kept = prenightly_dir(self.home)
        partial = kept.with_name(kept.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        copy_database(self.warehouse, partial / self.warehouse.name)
        if self.layout.models.exists():
            shutil.copytree(self.layout.models, partial / "models")
        record = {
            "as_of": as_of,
            "warehouse": self.warehouse.name,
            "models": "models",
            "landing": str(self.home / "landing"),
            "generator_sha256": generator_fingerprint(),
            "code": code_version(),
            "customers": self.args.customers,
            "days": self.args.days,
            "seed": self.args.seed,
            "end_date": END_DATE.isoformat(),
            # The bench run it comes from: its results.json has the same started_at.
            "bench_started_at": self.started_at,
        }
        (partial / SNAPSHOT_RECORD).write_text(json.dumps(record, indent=2))
        shutil.rmtree(kept, ignore_errors=True)
        partial.rename(kept)
        print(
            f"    pre-nightly warehouse and models kept in {kept} in "
            f"{time.perf_counter() - started:.1f} s (untimed)",
            flush=True,
        )

    @property
    def started_at(self) -> str:
        return dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(timespec="seconds")

    def run(self) -> dict[str, Any]:
        self.started = time.time()
        self.load_before = os.getloadavg()
        self.ensure_data()
        self.fresh_run_dir()
        from orchestration.defs.transform.project import prepare_manifest

        prepare_manifest()
        self.pipeline(
            "full",
            self.first_as_of,
            ("ingest_all", {"landing": str(self.landing), "warehouse": str(self.warehouse)}),
        )
        if not self.args.full_only:
            self.ratios()
        self.load_after = os.getloadavg()
        return self.report()

    def ratios(self) -> None:
        last = self.last_day.isoformat()
        for source_dir in sorted((self.home / "landing").iterdir()):
            if (source_dir / last).is_dir():
                link_date(self.landing, source_dir / last)
        self.pipeline(
            "nightly", last, ("ingest_date", {"landing": str(self.landing), "date": last})
        )
        next_day = (self.last_day + dt.timedelta(days=1)).isoformat()
        self.stage(
            "trigger_latency",
            "latency",
            {
                "landing": str(self.landing),
                "generated": str(self.home / "landing"),
                "source_date": last,
                "date": next_day,
                "warehouse": str(self.warehouse),
            },
            "latency",
            dbt_vars={"as_of_date": next_day, "trigger_rules": _order_trigger_rules()},
        )
        # The nightly's dbt invocations of dbt_models (before and after Splink: staging,
        # identity, customer view, lifecycle), replayed without dbt and Dagster.
        build = self.by_label().get("nightly-build")
        if build and build["ok"] and self.replay_warehouse.exists():
            targets = [run["target"] for run in replayed_dbt_runs(build)]
            self.stage(
                "dbt_replay_direct_sql",
                "direct_sql",
                {
                    "targets": targets,
                    "warehouse": str(self.replay_warehouse),
                    "live_warehouse": str(self.warehouse),
                    "copy_tables": list(BETWEEN_DBT_STEPS),
                    "compare_tables": list(REPLAY_COMPARED),
                    "profile_top": self.args.profile_top,
                    "profile_dir": str(self.run_dir / "profile"),
                    "memory_limit": self.args.replay_memory_limit,
                },
                "overhead",
            )
        for path in _with_wal(self.replay_warehouse):
            path.unlink(missing_ok=True)
        self.stage(
            "lifecycle_dbt",
            "dbt_cli",
            {"models": list(PANDAS_MODELS), "as_of": last},
            "pandas",
        )
        self.stage(
            "lifecycle_pandas",
            "pandas",
            {"warehouse": str(self.warehouse), "as_of": last},
            "pandas",
        )

    # -- figures

    def by_label(self) -> dict[str, dict[str, Any]]:
        return {r["stage"]: r for r in self.records}

    def phase_total(self, phase: str) -> float | None:
        stages = [r for r in self.records if r["phase"] == phase]
        if not stages or not all(r["ok"] for r in stages):
            return None
        return round(sum(r["seconds"] for r in stages), 1)

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "key": self.key,
            "customers": self.args.customers,
            "days": self.args.days,
            "seed": self.args.seed,
            "end_date": END_DATE.isoformat(),
            "started_at": self.started_at,
            "wall_seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            "code": code_version(),
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in self.load_after],
            "raw_rows": self.by_label()
            .get("full-ingestion", {})
            .get("details", {})
            .get("raw_rows"),
            "stages": self.records,
            "full_build_seconds": self.phase_total("full"),
            "nightly_seconds": self.phase_total("nightly"),
            "peak_rss_mb": max(
                (r.get("peak_tree_rss_mb", 0) for r in self.records if r.get("phase") != "data"),
                default=0,
            ),
        }
        report["ratios"] = self.ratio_figures(report)
        return report

    def ratio_figures(self, report: dict[str, Any]) -> dict[str, Any]:
        stages = self.by_label()
        ratios: dict[str, Any] = {}

        def put(name: str, value: float | None, **extra: Any) -> None:
            op, target = TARGETS[name]
            met = None
            if value is not None:
                met = value <= target if op == "<=" else value >= target
            ratios[name] = {"value": value, "target": f"{op} {target}", "met": met, **extra}

        build, direct = stages.get("nightly-build"), stages.get("dbt_replay_direct_sql")
        if build and direct and build["ok"] and direct["ok"]:
            # The steps that are not the replayed dbt invocations (Splink between them, the ML
            # steps, the audiences' dbt steps) are taken out. The run's process start-up, code
            # location load and executor overhead stay in: a run pays them.
            not_replayed = sum(
                seconds
                for step, seconds in build["details"].get("steps", {}).items()
                if not step.startswith(REPLAYED_DBT_STEPS)
            )
            dagster_seconds = round(build["seconds"] - not_replayed, 1)
            runs = replayed_dbt_runs(build)
            dbt_elapsed = round(sum(run["dbt_elapsed_seconds"] for run in runs), 1)
            replay = direct["details"]["direct_seconds"]
            put(
                "orchestration_overhead",
                round(dagster_seconds / direct["seconds"], 2),
                dagster_seconds=dagster_seconds,
                other_steps_seconds_excluded=round(not_replayed, 1),
                dbt_invocations=len(runs),
                dbt_elapsed_seconds=dbt_elapsed,
                replay_seconds=direct["seconds"],
                replay_sql_seconds=replay,
                dbt_over_replay=round(dbt_elapsed / replay, 2),
            )
        else:
            put("orchestration_overhead", None)
        dbt_cli, pandas = stages.get("lifecycle_dbt"), stages.get("lifecycle_pandas")
        if dbt_cli and pandas and dbt_cli["ok"] and pandas["ok"]:
            pandas_seconds = pandas["details"]["pandas_seconds"]
            put(
                "pandas_vs_dbt",
                round(pandas_seconds / dbt_cli["details"]["dbt_seconds"], 2),
                pandas_seconds=pandas_seconds,
                pandas_read_seconds=pandas["details"].get("read_seconds"),
                dbt_seconds=dbt_cli["details"]["dbt_seconds"],
                dbt_model_seconds=dbt_cli["details"]["model_seconds"],
                # The target needs dbt at pandas_seconds / 10: compare it with this, the part
                # of dbt's wall time that is not its models (process start, parse, adapter).
                dbt_outside_models_seconds=round(
                    dbt_cli["details"]["dbt_seconds"] - dbt_cli["details"]["model_seconds"], 2
                ),
                pandas_vs_dbt_model_time=round(
                    pandas_seconds / max(dbt_cli["details"]["model_seconds"], 0.01), 2
                ),
                outputs_equal=pandas["details"]["equal"],
                pandas_peak_rss_mb=pandas["peak_rss_mb"],
                dbt_peak_rss_mb=dbt_cli["peak_rss_mb"],
            )
        else:
            put("pandas_vs_dbt", None)
        full, nightly = report["full_build_seconds"], report["nightly_seconds"]
        outside_dbt = nightly_outside_dbt_nodes(self.records)
        put(
            "incremental_vs_full",
            round(nightly / full, 3) if full and nightly else None,
            nightly_seconds=nightly,
            full_build_seconds=full,
            outside_dbt_nodes_seconds=outside_dbt,
            with_dbt_nodes_in_no_time=(
                round(outside_dbt / full, 3) if full and outside_dbt is not None else None
            ),
        )
        put(
            "peak_rss_gb",
            round(report["peak_rss_mb"] / 1024, 2),
            note="largest process tree of any stage (Dagster + dbt together)",
        )
        latency = stages.get("trigger_latency")
        if latency and latency["ok"]:
            details = latency["details"]
            put(
                "trigger_latency_seconds",
                details["latency_seconds"],
                ingestion_seconds=details["ingestion_seconds"],
                dbt_seconds=details["dbt_seconds"],
                triggers_from_new_orders=details["triggers_from_new_orders"],
                orders_landed=details["orders_landed"],
            )
        else:
            put("trigger_latency_seconds", None)
        base = self.baseline
        if base and base.get("full_build_seconds") and full:
            put(
                "scaling_time_10x_customers",
                round(full / base["full_build_seconds"], 2),
                baseline=base["key"],
                baseline_code=base.get("code"),
                baseline_full_build_seconds=base["full_build_seconds"],
                baseline_peak_rss_mb=base.get("peak_rss_mb"),
                customers_ratio=round(self.args.customers / base["customers"], 2),
            )
        else:
            put("scaling_time_10x_customers", None)
        return ratios


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    import dagster
    import duckdb
    from dbt.version import __version__ as dbt_version

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, dbt-core {dbt_version}, Dagster {dagster.__version__}"
    )


def _replay_equality(equal: dict[str, bool] | None, rewritten: dict[str, int] | None) -> str:
    if not equal:
        return ""
    same = [t.split(".")[-1] for t, ok in equal.items() if ok]
    differ = [t.split(".")[-1] for t, ok in equal.items() if not ok]
    text = " The replay ran on a copy of the warehouse taken before the nightly's dbt steps"
    if same:
        text += f"; it left {', '.join(same)} as dbt did"
    if differ:
        text += f"; it left {', '.join(differ)} NOT as dbt did (the ratio is not like for like)"
    if rewritten:
        counts = ", ".join(f"{t.split('.')[-1]} {n:,}" for t, n in rewritten.items())
        text += f". Rows the replay rewrote: {counts}"
    return text + "."


def build_steps_table(records: list[dict[str, Any]]) -> list[str]:
    """The steps of each `nightly_build` run, side by side (seconds, from the run's events)."""
    builds = [r for r in records if r.get("stage", "").endswith("-build") and r.get("ok")]
    if not builds:
        return []
    steps = list(dict.fromkeys(step for r in builds for step in r["details"].get("steps", {})))
    executor = builds[0]["details"].get("executor")
    lines = [
        "",
        f"Steps of the `{NIGHTLY_BUILD}` runs ({executor} executor; seconds, from the run's "
        "events; the rest of a build's time is its process start, code location load and "
        "Dagster's own work between steps). Peak RSS while the step ran, in MB: of the run's "
        "process / of its process tree (with the dbt process a dbt step starts):",
        "",
        "| step | " + " | ".join(f"{r['stage']} s | {r['stage']} RSS" for r in builds) + " |",
        "|---|" + "---|---|" * len(builds),
    ]
    for step in steps:
        cells = []
        for r in builds:
            peak = r["details"].get("step_peak_rss_mb", {}).get(step)
            cells.append(str(r["details"].get("steps", {}).get(step, "")))
            cells.append(f"{peak['process']} / {peak['tree']}" if peak else "")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Pipeline benchmark: {report['customers']:,} customers x {report['days']} days "
        f"(seed {report['seed']})",
        "",
        f"Machine: {report['machine']}. Load average before/after: "
        f"{report['load_average_before']} / {report['load_average_after']}. "
        f"Run started {report['started_at']}, took {report['wall_seconds'] / 60:.1f} min. "
        f"Raw rows landed: {report['raw_rows'] or 'n/a'}.",
        "",
        "| phase | stage | seconds | peak RSS (MB) | process tree peak (MB) | warehouse after (GB) "
        "| note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["stages"]:
        note = ""
        if r.get("reused"):
            note = "reused (generated earlier; time of that run)"
        elif not r.get("ok", True):
            note = "FAILED: " + str(r.get("error", ""))[:120].replace("|", "/").replace("\n", " ")
        elif r.get("details", {}).get("skipped"):
            note = r["details"]["skipped"]
        lines.append(
            f"| {r['phase']} | {r['stage']} | {r.get('seconds', '')} | "
            f"{r.get('peak_rss_mb', '')} | {r.get('peak_tree_rss_mb', '')} | "
            f"{r.get('warehouse_gb', '')} | {note} |"
        )
    lines += build_steps_table(report["stages"])
    lines += [
        "",
        f"Full build (ingestion to planning, generation excluded): "
        f"{report['full_build_seconds']} s; nightly run after one new day: "
        f"{report['nightly_seconds']} s.",
        "",
        "| ratio | measured | target | met | detail |",
        "|---|---|---|---|---|",
    ]
    for name, ratio in report["ratios"].items():
        detail = ", ".join(
            f"{k}={v}" for k, v in ratio.items() if k not in ("value", "target", "met")
        )
        met = {True: "yes", False: "NO", None: "n/a"}[ratio["met"]]
        lines.append(f"| {name} | {ratio['value']} | {ratio['target']} | {met} | {detail} |")
    slow = next((r for r in report["stages"] if r["stage"] == "dbt_replay_direct_sql"), None)
    if slow and slow.get("ok"):
        d = slow["details"]
        lines += [
            "",
            f"Direct replay: {d['statements']} statements in {d['direct_seconds']} s (models "
            f"{d['model_seconds']} s, tests {d['test_seconds']} s, unit tests "
            f"{d['unit_test_seconds']} s); dbt's own time in the same statements: "
            f"{d['dbt_statement_seconds']} s."
            + _replay_equality(
                d.get("replayed_tables_equal_dbt"), d.get("rows_rewritten_by_replay")
            ),
            "",
            "Slowest models (seconds replayed / in dbt): "
            + ", ".join(f"{m} {s} / {t}" for m, s, t in d["slowest_models"][:10])
            + ".",
            "",
            "Heaviest statements under EXPLAIN ANALYZE (profiles in `run/profile/`):",
        ]
        for profile in d["profiles"]:
            ops = "; ".join(
                f"{o['operator']} {o['seconds']} s ({o['rows']} rows"
                f"{', ' + o['detail'] if o['detail'] else ''})"
                for o in profile["top_operators"][:3]
            )
            lines.append(
                f"- `{profile['model']}`: {profile['statement_seconds']} s "
                f"(CPU {profile['cpu_seconds']} s), {profile['allocated_memory_mb']} MB "
                f"allocated in total; heaviest operators: {ops}"
            )
    latency = next((r for r in report["stages"] if r["stage"] == "trigger_latency"), None)
    if latency and latency.get("ok"):
        d = latency["details"]
        lines += [
            "",
            f"Trigger latency: {d['orders_landed']} orders landed; ingestion "
            f"{d['ingestion_seconds']} s + dbt {d['dbt_seconds']} s = {d['latency_seconds']} s "
            f"(plus {d['process_startup_seconds']} s loading the code location, which a running "
            f"deployment has done already). Triggers caused by the new orders: "
            f"{d['triggers_from_new_orders']}; other triggers recorded by the same run (time-"
            f"based ones that came due): {d['other_triggers_recorded']}. dbt models: "
            + ", ".join(d["models"])
            + ".",
        ]
    return "\n".join(lines) + "\n"


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument(
        "--baseline-customers",
        type=int,
        default=None,
        help="scale compared against for the scaling ratio (default: a tenth; 0 = none); "
        "its results are reused when present, else it is run first with --full-only",
    )
    parser.add_argument("--full-only", action="store_true", help="only the full build (no ratios)")
    parser.add_argument(
        "--profile-top", type=int, default=3, help="heaviest statements to EXPLAIN ANALYZE"
    )
    parser.add_argument(
        "--replay-memory-limit",
        default=None,
        help="DuckDB memory_limit for the direct replay only (e.g. 3GB; default: the profile's, "
        "DUCKDB_MEMORY_LIMIT or 2.5GB), to see what a limit costs; another value than dbt's "
        "makes the ratio not like for like",
    )
    parser.add_argument(
        "--keep-snapshot",
        action="store_true",
        help="keep the warehouse as the nightly's dbt steps found it, with the model artefacts, "
        "in <work>/<key>/prenightly/ for benchmarks/replay_nightly.py (a copy of the warehouse "
        "more on disk)",
    )
    parser.add_argument(
        "--skip-disk-check",
        action="store_true",
        help="start even when --work seems to lack the disk space the run needs (estimated "
        "from the 1M run)",
    )
    parser.add_argument(
        "--stage", nargs=3, metavar=("NAME", "PARAMS", "RESULT"), help=argparse.SUPPRESS
    )
    return parser


# Disk the 1M x 365-day run used (measured 2026-12-06): the warehouse 5.6 GB, the generated
# data 1.8 GB. A run holds the warehouse, a copy for the direct replay (deleted after it) and,
# with --keep-snapshot, the kept pre-nightly copy; DuckDB may spill beside the warehouse.
WAREHOUSE_BYTES_PER_CUSTOMER_YEAR = 5_600
GENERATED_BYTES_PER_CUSTOMER_YEAR = 1_800
DISK_MARGIN = 1.25


def disk_needed(args: argparse.Namespace, customers: int, full_only: bool) -> dict[str, int]:
    """Bytes a bench at `customers` will write into --work, by item, scaled from the 1M run;
    what an earlier run left that this one deletes or reuses is counted off."""
    home = args.work / f"c{customers}_d{args.days}_s{args.seed}"
    scale = customers * args.days / 365
    warehouse = int(WAREHOUSE_BYTES_PER_CUSTOMER_YEAR * scale)
    needed = {"warehouse": warehouse}
    if not (home / "truth" / "manifest.json").exists():
        needed["generated data"] = int(GENERATED_BYTES_PER_CUSTOMER_YEAR * scale)
    if not full_only:
        needed["replay copy"] = warehouse
        if args.keep_snapshot:
            needed["pre-nightly snapshot"] = warehouse
    run_dir = home / "run"
    if run_dir.exists():
        # fresh_run_dir deletes the last run's folder before anything is written.
        needed["last run, deleted"] = -sum(
            f.stat().st_size for f in run_dir.rglob("*") if f.is_file() and not f.is_symlink()
        )
    return needed


def check_disk(args: argparse.Namespace, runs: list[tuple[int, bool]]) -> None:
    """Refuse to start a run that will fill the disk halfway (at 1M customers, after about
    10 minutes of ingestion), saying what it needs and what is free."""
    needed: dict[str, int] = {}
    for customers, full_only in runs:
        for item, size in disk_needed(args, customers, full_only).items():
            label = f"{item} ({customers:,} customers)"
            needed[label] = needed.get(label, 0) + size
    total = int(max(sum(needed.values()), 0) * DISK_MARGIN)
    existing = args.work.resolve()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < total:
        items = ", ".join(f"{item} {size / 1e9:.1f} GB" for item, size in needed.items())
        raise SystemExit(
            f"not enough disk space for the benchmark in {args.work}: about {total / 1e9:.1f} "
            f"GB needed ({items}, plus {DISK_MARGIN - 1:.0%} for DuckDB's spill files), "
            f"{free / 1e9:.1f} GB free on {existing}. Free some space, point --work at a "
            "larger disk, or run a smaller --customers; --skip-disk-check starts anyway."
        )


def main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    if args.stage:
        name, params_file, result_file = args.stage
        _run_stage_here(name, Path(params_file), Path(result_file))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.customers < 1 or args.days < 2:
        parser.error("--customers must be >= 1 and --days >= 2 (the last day is landed later)")
    baseline_customers = (
        args.customers // 10 if args.baseline_customers is None else args.baseline_customers
    )
    baseline = None
    base_results = None
    run_baseline = False
    code = code_version()
    if baseline_customers and not args.full_only:
        base_key = f"c{baseline_customers}_d{args.days}_s{args.seed}"
        base_results = args.work / base_key / "results.json"
        run_baseline = not baseline_reusable(base_results, code)
    if not args.skip_disk_check:
        runs = [(args.customers, args.full_only)]
        if run_baseline:
            runs.append((baseline_customers, True))
        check_disk(args, runs)
    if run_baseline:
        print(
            f"scaling baseline: running {baseline_customers:,} customers first "
            f"(no results of commit {code} at that scale)",
            flush=True,
        )
        base_args = argparse.Namespace(**{**vars(args), "customers": baseline_customers})
        base_args.full_only = True
        base_bench = Bench(base_args)
        _write(base_bench, base_bench.run())
    if base_results is not None:
        baseline = json.loads(base_results.read_text())
    bench = Bench(args)
    bench.baseline = baseline
    _write(bench, bench.run())


def _write(bench: Bench, report: dict[str, Any]) -> None:
    table = markdown(report)
    (bench.home / "results.json").write_text(json.dumps(report, indent=2, default=str))
    (bench.home / "results.md").write_text(table)
    keep_history(bench.home, report, table)
    print(table, flush=True)


def keep_history(home: Path, report: dict[str, Any], table: str) -> Path:
    """A copy of the run's results under <home>/history/<started>-<commit>.json (and .md):
    results.json is overwritten by the next run, and with it the per-model figures a
    regression is found by."""
    started = str(report.get("started_at") or "unknown").split("+")[0].replace(":", "-")
    name = f"{started}-{report.get('code') or 'nocommit'}"
    history = home / "history"
    history.mkdir(parents=True, exist_ok=True)
    (history / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    (history / f"{name}.md").write_text(table)
    return history / f"{name}.json"


if __name__ == "__main__":
    main()

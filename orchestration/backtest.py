"""``cdp backtest``: reproducible out-of-time backtests of the ML models on any landing directory.

cdp backtest churn --landing DIR --as-of 2026-08-24 [--horizon-days 90] --json
cdp backtest recommendations --landing DIR --as-of 2026-08-24 [--horizon-days 30] [--k 10] --json

The landing directory is ingested and the dbt marts are built into a scratch DuckDB file
(ingestion and the marts' upstream only: no ML, audience or activation asset runs), kept under
``--work-dir`` (default: the system temp dir) and reused while the landing content is the same.
Then the pure ``ml.backtest`` functions train before ``--as-of`` and judge on the days after it.
Identity resolution sees the whole landing directory (later days included), so "who is the
same customer" is known with hindsight; features and training labels never see data on or
after their cutoff. With ``--json`` stdout carries only the JSON; progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from orchestration.environ import environment

# Tables the backtests read; the scratch build materialises these and what they depend on.
REQUIRED_ASSETS = (
    ("marts", "fct_orders"),
    ("marts", "fct_order_lines"),
    ("marts", "dim_customers"),
    ("marts", "dim_customer_identifiers"),
    ("staging", "stg_web__events"),
    ("staging", "stg_catalog__products"),
)

backtest_app = typer.Typer(
    no_args_is_help=True,
    help="Train before --as-of, score at it, and judge against what happened next, with baselines.",
)
err = Console(stderr=True)


def landing_fingerprint(landing: Path) -> str:
    """SHA-256 over every file's relative path and content: the scratch warehouse's identity."""
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(landing)).encode())
        digest.update(b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout, by Python or by child processes (dbt echoes its log),
    to stderr, so ``--json`` output stays parseable."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def build_marts(landing: Path, warehouse: Path, say: Callable[[str], None]) -> None:
    """Ingest ``landing`` and build the dbt marts the backtests read into ``warehouse``."""
    import dagster as dg
    import duckdb

    from orchestration.ingestion.contract import SOURCES
    from orchestration.runner import QUIET_RUN_CONFIG, _failure_message, run_pipeline

    # An ephemeral Dagster instance: a scratch build must not show up as the latest
    # materialisation of the real assets in the UI. Models trained by anything downstream
    # would land beside the scratch warehouse, never in the project's MODEL_DIR. dbt runs only
    # the tests whose every parent it builds ("cautious"): by default a test that also reads a
    # model outside the marts the backtests need (the stage history against dim_customers)
    # ran against a table the scratch warehouse never has, and every fresh build warned that
    # dbt tests had failed.
    with environment(
        DAGSTER_HOME="",
        MODEL_DIR=str(warehouse.parent / "models"),
        DBT_INDIRECT_SELECTION="cautious",
    ):
        ingestion = run_pipeline(
            landing,
            warehouse,
            include_downstream=False,
            on_result=lambda s: say(
                f"{'✓' if s.success else '✗'} {s.name} ({s.seconds:.1f}s)"
                + ("" if s.success else f": {s.error}")
            ),
        )
        if not any(s.success for s in ingestion.stages):
            raise RuntimeError(f"nothing could be ingested from {landing}")
        from orchestration.definitions import defs as build_defs

        defs = build_defs()
        required = [dg.AssetKey(list(k)) for k in REQUIRED_ASSETS]
        ingestion_keys = [dg.AssetKey(["raw", s]) for s in SOURCES]
        selection = dg.AssetSelection.assets(*required).upstream() - dg.AssetSelection.assets(
            *ingestion_keys
        )
        say("building the dbt marts")
        result = dg.materialize(
            list(defs.assets or []),
            selection=selection,
            resources=dict(defs.resources or {}),
            instance=dg.DagsterInstance.ephemeral(),
            tags={"cdp/entrypoint": "cdp backtest"},
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        present = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
    missing = [f"{s}.{t}" for s, t in REQUIRED_ASSETS if f"{s}.{t}" not in present]
    if missing:
        raise RuntimeError(f"the marts build did not produce {missing}: {_failure_message(result)}")
    if not result.success:
        # A failed dbt test (say, a relationship warning on odd source data) still leaves
        # the marts in place; the backtest goes on and says so.
        say(f"[yellow]warning[/]: some dbt tests or steps failed: {_failure_message(result)}")


def scratch_warehouse(landing: Path, work_dir: Path | None, say: Callable[[str], None]) -> Path:
    """The scratch warehouse for ``landing``, built once per landing content and then reused."""
    if not landing.is_dir():
        raise FileNotFoundError(f"landing directory {landing} does not exist")
    if not any(landing.glob("online_orders/*/*")):
        raise FileNotFoundError(
            f"{landing} has no online_orders/<YYYY-MM-DD>/ files; the backtests need at least "
            "online orders (order_id, ordered_at, order_total and account_id/email/phone)"
        )
    fingerprint = landing_fingerprint(landing)
    root = (work_dir or Path(tempfile.gettempdir()) / "cdp-backtest") / fingerprint[:16]
    warehouse = root / "warehouse.duckdb"
    marker = root / "built.json"
    if marker.exists() and warehouse.exists():
        say(f"reusing the scratch warehouse {warehouse} (same landing content)")
        return warehouse
    if root.exists():
        shutil.rmtree(root)  # a build that did not finish: start over
    root.mkdir(parents=True)
    say(f"building a scratch warehouse from {landing} in {root}")
    with _stdout_to_stderr():
        build_marts(landing.resolve(), warehouse, say)
    marker.write_text(
        json.dumps(
            {
                "landing": str(landing.resolve()),
                "fingerprint": fingerprint,
                "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
    )
    return warehouse


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"--as-of must be a date YYYY-MM-DD, got {value!r}") from error


def _run(
    landing: Path, work_dir: Path | None, as_json: bool, task: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    import duckdb

    del as_json  # progress always goes to stderr, so stdout stays clean for the result
    try:
        warehouse = scratch_warehouse(landing, work_dir, err.print)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return task(con)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        err.print(f"[red]backtest failed[/]: {error}")
        raise typer.Exit(2) from error


LandingOption = Annotated[
    Path, typer.Option(help="Landing directory: <source>/<YYYY-MM-DD>/<files>.")
]
AsOfOption = Annotated[
    str, typer.Option("--as-of", help="Scoring date YYYY-MM-DD; the horizon after it is judged.")
]
WorkDirOption = Annotated[
    Path | None,
    typer.Option(help="Where scratch warehouses are kept and reused (default: system temp)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")]


@backtest_app.command("churn")
def churn_command(
    landing: LandingOption,
    as_of: AsOfOption,
    horizon_days: Annotated[
        int, typer.Option(min=1, help="Churn = no purchase in this many days.")
    ] = 90,
    random_state: Annotated[int, typer.Option(help="Seed of every random step.")] = 42,
    work_dir: WorkDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Churn model vs recency-only and RFM logistic baselines: AUC, PR-AUC, Brier."""
    from ml.backtest import churn_backtest

    date = _parse_date(as_of)
    result = _run(
        landing,
        work_dir,
        as_json,
        lambda con: churn_backtest(con, date, horizon_days, random_state),
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    console.print(
        f"[bold]churn backtest[/] as of {result['as_of']}, horizon {result['horizon_days']} days, "
        f"trained at {result['train_cutoff']} on {result['training']['rows']:,} customers, "
        f"judged on {result['evaluation']['rows']:,} (churn rate {result['evaluation']['positive_rate']:.1%})"
    )
    rows = [("model", result["model"]), *result["baselines"].items()]
    for name, m in rows:
        console.print(
            f"  {name:<14} AUC {m['auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  Brier {m['brier']:.4f}"
        )
    verdict = "met" if result["target_met"] else "NOT met"
    console.print(
        f"  AUC gain over the best baseline ({result['best_baseline']}): "
        f"{result['auc_gain_over_best_baseline']:+.4f} (target +0.03: {verdict})"
    )


@backtest_app.command("recommendations")
def recommendations_command(
    landing: LandingOption,
    as_of: AsOfOption,
    horizon_days: Annotated[
        int, typer.Option(min=1, help="Purchases in this many days after --as-of are the truth.")
    ] = 30,
    k: Annotated[int, typer.Option(min=1, help="Recommendations per customer.")] = 10,
    work_dir: WorkDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recommender vs popularity: hit-rate@k and recall@k on new items bought after --as-of."""
    from ml.backtest import recommendations_backtest

    date = _parse_date(as_of)
    result = _run(
        landing, work_dir, as_json, lambda con: recommendations_backtest(con, date, horizon_days, k)
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    console.print(
        f"[bold]recommendations backtest[/] as of {result['as_of']}, horizon "
        f"{result['horizon_days']} days, {result['evaluated_customers']:,} customers bought a new item"
    )
    if result["evaluated_customers"] == 0:
        console.print(f"  nothing to judge: {result.get('note', '')}")
        return
    for name in ("model", "popularity"):
        m = result[name]
        console.print(
            f"  {name:<11} hit-rate@{k} {m[f'hit_rate_at_{k}']:.4f}  recall@{k} {m[f'recall_at_{k}']:.4f}"
        )
    verdict = "met" if result["target_met"] else "NOT met"
    console.print(f"  ratio to popularity {result['hit_rate_ratio']} (target 2x: {verdict})")

"""``cdp``: the command line of the platform.

cdp generate --customers 10000 --days 365 --seed 42 --out data/demo
cdp run --landing data/demo/landing --warehouse data/warehouse.duckdb
cdp demo
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orchestration.backtest import backtest_app

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Warehouse-native customer data platform."
)
console = Console(stderr=False)
app.add_typer(backtest_app, name="backtest")


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option(help="Output folder; landing/ and truth/ are written inside.")
    ] = Path("data/demo"),
    customers: Annotated[int, typer.Option(min=1, help="Number of people to simulate.")] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history to land.")] = 365,
    seed: Annotated[
        int, typer.Option(help="Random seed; same arguments give the same files.")
    ] = 42,
    end_date: Annotated[
        str | None, typer.Option(help="Last landed day, YYYY-MM-DD (default: yesterday, UTC).")
    ] = None,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of rows given one defect.")
    ] = 0.002,
) -> None:
    """Write deterministic demo landing files plus a ground-truth folder beside them."""
    from datagen import generate as run_generator

    end = dt.date.fromisoformat(end_date) if end_date else None
    with console.status("generating demo data…") as status:
        summary = run_generator(
            out,
            customers=customers,
            days=days,
            seed=seed,
            end_date=end,
            error_rate=error_rate,
            progress=lambda message: status.update(f"generating: {message}"),
        )
    console.print(
        f"[green]generated[/] {customers:,} customers, {summary.start_date} → {summary.end_date} "
        f"in {summary.seconds:.1f}s"
    )
    for source, rows in summary.rows.items():
        console.print(f"  {source:<20} {rows:>12,} rows")
    console.print(f"landing: {summary.landing_dir}\ntruth:   {summary.truth_dir}")


def _run(landing: Path, warehouse: Path, report: Path | None) -> bool:
    from orchestration.report import build_report
    from orchestration.runner import run_pipeline

    if not landing.is_dir():
        console.print(f"[red]landing directory {landing} does not exist[/]")
        raise typer.Exit(2)
    # Campaign previews (dry-run is the default) go beside the warehouse unless configured.
    previews = Path(
        os.environ.setdefault("ACTIVATION_PREVIEW_DIR", str(warehouse.parent / "previews"))
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} stages"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def on_stage(name: str, index: int, total: int) -> None:
            progress.update(task, description=f"materialising {name}", completed=index, total=total)

        def on_result(stage) -> None:
            progress.advance(task)
            if stage.success:
                loaded = stage.metadata.get("rows_loaded")
                quarantined = stage.metadata.get("rows_quarantined")
                detail = (
                    f"{loaded:,} rows loaded, {quarantined:,} quarantined"
                    if loaded is not None
                    else "done"
                )
                progress.console.print(
                    f"  [green]✓[/] {stage.name:<28} {detail}  ({stage.seconds:.1f}s)"
                )
            else:
                progress.console.print(f"  [red]✗ {stage.name}[/]: {stage.error}")

        try:
            result = run_pipeline(landing, warehouse, on_stage=on_stage, on_result=on_result)
        except KeyboardInterrupt:
            # Ctrl-C between two stages' runs, where Dagster does not take the signal over.
            console.print("[red]interrupted[/] (run the command again to finish)")
            raise typer.Exit(130) from None
    if result.interrupted:
        left = ", ".join(result.not_run) or "none"
        console.print(
            f"[red]interrupted[/]: stages not run: {left} (run the command again to finish them)"
        )
        raise typer.Exit(130)
    if report is not None and warehouse.exists():
        sections = build_report(warehouse, report, previews=previews)
        for section in sections:
            console.print(f"[bold]{section.title}[/]")
            for line in section.console:
                console.print(line)
        console.print(f"\nsummary written to [bold]{report}[/] (open it in a browser)")
    if not result.success:
        console.print("[red]some stages failed; see the messages above[/]")
    return result.success


@app.command()
def run(
    landing: Annotated[
        Path, typer.Option(help="Landing directory: <source>/<YYYY-MM-DD>/<files>.")
    ] = Path("data/landing"),
    warehouse: Annotated[Path, typer.Option(help="DuckDB file to build.")] = Path(
        "data/warehouse.duckdb"
    ),
    report: Annotated[Path | None, typer.Option(help="Also write an HTML summary here.")] = None,
) -> None:
    """Materialise every asset for every date present in LANDING, in-process through Dagster."""
    if not _run(landing, warehouse, report):
        raise typer.Exit(1)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for demo data, warehouse and summary.")] = Path(
        "data/demo"
    ),
    customers: Annotated[int, typer.Option(min=100)] = 10_000,
    days: Annotated[int, typer.Option(min=30)] = 365,
    seed: int = 42,
) -> None:
    """Generate demo data, run the whole pipeline on it and write ``summary.html``."""
    generate(out=out, customers=customers, days=days, seed=seed, end_date=None, error_rate=0.002)
    # The demo knows the truth behind its data, so identity quality is measured against it.
    os.environ.setdefault("GROUND_TRUTH_DIR", str((out / "truth").resolve()))
    warehouse = out / "warehouse.duckdb"
    # The landing files were just regenerated (ending today), so the demo starts from an empty
    # warehouse rather than layering a new history over yesterday's.
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    ok = _run(out / "landing", warehouse, out / "summary.html")
    if not ok:
        raise typer.Exit(1)


webhooks_app = typer.Typer(no_args_is_help=True, help="Provider webhook receiver.")
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("serve")
def webhooks_serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (behind your TLS proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Receive SendGrid event webhooks and Twilio inbound/status callbacks: verify their
    signatures (SENDGRID_WEBHOOK_PUBLIC_KEY, TWILIO_AUTH_TOKEN), answer at once and spool the
    bodies to ACTIVATION_EVENT_SPOOL; the `activation/provider_events` asset ingests them."""
    import time

    from activations.events import EventSpool, EventWebhookReceiver

    spool = EventSpool(os.environ.get("ACTIVATION_EVENT_SPOOL", "data/event_spool"))
    receiver = EventWebhookReceiver(
        spool=spool,
        sendgrid_public_key=os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
        twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
        twilio_url=os.environ.get("TWILIO_INBOUND_URL") or None,
        twilio_status_url=os.environ.get("TWILIO_STATUS_CALLBACK_URL") or None,
        host=host,
        port=port,
    ).start()
    console.print(f"receiving provider events on {receiver.url}, spooling to {spool.directory}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()

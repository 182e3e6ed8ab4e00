"""The demo summary and the `cdp` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.ingestion.loader import load_partitions, partition_dates
from orchestration.report import build_report


def test_report_shows_counts_and_quarantine_without_personal_data(
    landing: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for source in ("online_orders", "products"):
            load_partitions(con, landing, source, partition_dates(landing, source))
    out = tmp_path / "summary.html"
    sections = build_report(warehouse, out)
    page = out.read_text()
    assert [s.title for s in sections] == ["Landed data (raw)", "Quarantine"]
    assert "online_orders" in page and "invalid_timestamp:ordered_at" in page
    assert "online_orders/2026-03-01/orders.csv.gz" in page
    # Quarantined records hold emails and names; the summary shows file, line and reason only.
    assert "Bob@Example.com" not in page


def test_cdp_generate_writes_landing_and_truth(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--customers",
            "300",
            "--days",
            "20",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "g"),
            "--end-date",
            "2026-10-31",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g/landing/online_orders").is_dir()
    manifest = json.loads((tmp_path / "g/truth/manifest.json").read_text())
    assert manifest["arguments"]["seed"] == 3


def test_cdp_run_fails_clearly_on_a_missing_landing_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


def test_cdp_run_stops_on_ctrl_c_instead_of_running_the_next_stages(
    landing: Path, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT) once the first stage has reported: the stage it arrives in stops or
    finishes, no later stage starts, and the command says so and exits 130. Before, Dagster
    took the signal over inside each stage's run and `cdp run` went on to the next ones."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "run",
            "--landing",
            str(landing),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "ACTIVATION_PREVIEW_DIR": str(tmp_path / "previews")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(300, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "✓" in line or "✗" in line:
                process.send_signal(signal.SIGINT)
                break
        lines += process.stdout.readlines()
        code = process.wait()
    finally:
        watchdog.cancel()
    output = "".join(lines)
    assert code == 130, output
    assert "interrupted" in output
    assert "raw/online_orders" in output
    # The last stage (dbt, ML, planning) never started.
    assert "✓ transform, score and plan" not in output
    assert "✗ transform, score and plan" not in output

"""The demo summary and the `cdp` command line."""

from __future__ import annotations

import json
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

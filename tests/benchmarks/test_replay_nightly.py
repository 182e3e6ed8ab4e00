"""`make bench BENCH_ARGS=--keep-snapshot` keeps the warehouse as the nightly's dbt steps found
it, and replay_nightly.py measures nightly stages again on copies of it, against the bench's
figures of the same stages, without ever changing the kept one.

The end-to-end test runs the bench for real at 300 customers x 30 days, but only its
ingestion stages (the others, over a minute even at that scale, are recorded as not run), then
replays the nightly build job through the real child process: from raw, as the full build
builds it, which is the same job and the same machinery."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmarks._load import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_VIEW_MODELS = {"stg_ecommerce__orders", "int_identity_customer_id_map", "fct_orders"}
LIFECYCLE_MODELS = {"dim_customers", "int_customers_lifecycle_staged"}


def _ingestion_only(module: ModuleType) -> type:
    class IngestionOnlyBench(module.Bench):
        """The bench with only the stages a pre-nightly snapshot needs: generation and the two
        ingestions. The full build's churn step leaves a model artefact behind, as it would."""

        def stage(
            self,
            label: str,
            kind: str,
            params: dict[str, Any],
            phase: str,
            dbt_vars: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            if kind in ("generate", "ingest_all", "ingest_date"):
                return super().stage(label, kind, params, phase, dbt_vars)
            if label == "full-build":
                artefact = self.layout.models / "churn" / "metadata.json"
                artefact.parent.mkdir(parents=True)
                artefact.write_text('{"trained_at": "2026-11-21"}')
            record = {"phase": phase, "stage": label, "ok": False, "error": "not run by the test"}
            self.records.append(record)
            return record

    return IngestionOnlyBench


def _fingerprint(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {
        str(path.relative_to(folder)): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_bench_keeps_the_prenightly_warehouse_and_a_replay_measures_a_stage_on_a_copy(
    tmp_path: Path,
) -> None:
    module = load_benchmark("bench_pipeline")
    scale = ["--customers", "300", "--days", "30", "--seed", "3", "--baseline-customers", "0"]
    args = module.argument_parser().parse_args(
        [*scale, "--work", str(tmp_path / "bench"), "--keep-snapshot"]
    )
    bench = _ingestion_only(module)(args)
    bench.run()

    kept = module.prenightly_dir(bench.home)
    snapshot = json.loads((kept / module.SNAPSHOT_RECORD).read_text())
    assert snapshot["as_of"] == module.END_DATE.isoformat()
    assert snapshot["bench_started_at"] == bench.started_at
    assert Path(snapshot["landing"]) == bench.home / "landing"
    assert (kept / "warehouse.duckdb").is_file()
    assert (kept / "models" / "churn" / "metadata.json").is_file()
    # The bench's own replay copy is still deleted after its replay: only prenightly/ stays.
    assert not bench.replay_warehouse.exists()
    before = _fingerprint(kept)

    work = tmp_path / "replay"
    script = ROOT / "benchmarks" / "replay_nightly.py"
    done = subprocess.run(
        [sys.executable, script, "--home", bench.home, "--stages", "build", "--work", work],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _fingerprint(kept) == before
    assert (work / "run" / "models" / "churn" / "metadata.json").is_file()
    [entry] = json.loads((work / "replay.json").read_text())["stages"]
    assert entry["stage"] == "build" and not entry["prerequisite"]
    figures = entry["figures"]
    # dbt_models before and after the Splink step, then the audiences' dbt steps.
    assert figures["dbt_invocations"] >= 3
    assert set(figures["model_seconds"]) >= CUSTOMER_VIEW_MODELS | LIFECYCLE_MODELS
    assert {"dbt_models", "dbt_models_2", "intermediate__identity_probabilistic_links"} <= set(
        figures["steps"]
    )
    assert "build: wall" in done.stdout and "slowest models:" in done.stdout
    # Memory is sampled while each step runs: the run's process, and with it any dbt process.
    peaks = figures["step_peak_rss_mb"]
    assert {step for step, seconds in figures["steps"].items() if seconds >= 1} <= set(peaks)
    assert all(0 < peak["process"] <= peak["tree"] for peak in peaks.values())
    assert peaks["dbt_models"]["tree"] > peaks["dbt_models"]["process"]


def test_a_stage_asked_for_alone_runs_after_the_stages_it_reads() -> None:
    replay = load_benchmark("replay_nightly")

    assert replay.plan(["planning"]) == [("build", False), ("planning", True)]
    assert replay.plan(["planning", "build"]) == [("build", True), ("planning", True)]
    assert replay.plan(["build"]) == [("build", True)]
    with pytest.raises(ValueError, match="build,planning"):
        replay.plan(["ingestion"])


def _record(
    seconds: float,
    models: dict[str, float],
    steps: dict[str, float],
    peaks: dict[str, dict[str, int]] | None = None,
) -> dict:
    """A stage record as run_stage returns it and results.json keeps it: one dbt invocation
    whose nodes are these models and 1 s of tests, and the steps' peak memory."""
    return {
        "phase": "nightly",
        "stage": "nightly-build",
        "seconds": seconds,
        "peak_tree_rss_mb": 1000,
        "ok": True,
        "details": {
            "materialize_seconds": seconds - 5,
            "steps": steps,
            "step_peak_rss_mb": peaks or {},
            "dbt": [
                {
                    "dbt_elapsed_seconds": sum(models.values()) + 2,
                    "node_seconds": sum(models.values()) + 1,
                    "model_seconds": models,
                }
            ],
        },
    }


def test_figures_are_compared_with_the_same_stage_of_the_benchs_nightly(tmp_path: Path) -> None:
    replay = load_benchmark("replay_nightly")
    benched = _record(
        40.0,
        {"int_a": 10.0, "int_b": 4.0},
        {"dbt_models": 30.0},
        {"dbt_models": {"process": 500, "tree": 3000}},
    )
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "started_at": "2026-12-05T01:46:54+00:00",
                "code": "596aed1",
                "stages": [
                    {**benched, "phase": "full", "stage": "full-build", "seconds": 99.0},
                    benched,
                ],
            }
        )
    )
    repeats = [
        replay.stage_figures(
            _record(
                s,
                {"int_a": a, "int_b": 4.0},
                {"dbt_models": s - 10},
                {"dbt_models": {"process": p, "tree": 2000}},
            )
        )
        for s, a, p in ((20.0, 5.0, 400), (24.0, 6.0, 450), (22.0, 2.0, 300))
    ]

    by_stage, run = replay.bench_nightly(tmp_path)
    figures = replay.median_figures(repeats)
    ratios = replay.compare(figures, by_stage["build"])

    assert run == {"started_at": "2026-12-05T01:46:54+00:00", "code": "596aed1"}
    assert by_stage["build"]["seconds"] == 40.0
    assert figures["seconds"] == 22.0
    assert figures["dbt_model_seconds"] == 9.0 and figures["dbt_test_seconds"] == 1.0
    assert ratios["seconds"] == 0.55
    assert ratios["steps"] == {"dbt_models": 0.4}
    assert ratios["model_seconds"] == {"int_a": 0.5, "int_b": 1.0}
    # Peak memory per step, each measure on its own (the replay once failed dividing them).
    assert figures["step_peak_rss_mb"] == {"dbt_models": {"process": 400, "tree": 2000}}
    assert ratios["step_peak_rss_mb"] == {"dbt_models": {"process": 0.8, "tree": 0.67}}
    lines = replay.describe(
        {
            "stage": "build",
            "prerequisite": False,
            "repeats": repeats,
            "figures": figures,
            "bench": by_stage["build"],
        }
    )
    assert lines[0].startswith("build: wall 22 s (bench 40 s, x0.55) (median of 3: 20, 24, 22)")
    assert "int_a 5 s (bench 10 s, x0.50)" in lines[-1]
    assert "dbt_models 400 / 2000 MB (bench 500 / 3000 MB)" in "\n".join(lines)


def test_without_a_kept_snapshot_the_replay_says_how_to_keep_one(tmp_path: Path) -> None:
    replay = load_benchmark("replay_nightly")

    with pytest.raises(SystemExit, match="make bench BENCH_ARGS=--keep-snapshot"):
        replay.main(["--home", str(tmp_path), "--stages", "build"])

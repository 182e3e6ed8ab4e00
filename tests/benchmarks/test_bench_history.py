"""`make bench` keeps every run's results: results.json holds only the last run, and comparing
two runs model by model (how a regression is found) needs the one before it too."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.benchmarks._load import load_benchmark


def _run_results(folder: Path, times: dict[str, float]) -> None:
    """A dbt run_results.json (the fields the benchmark reads) with these node times."""
    folder.mkdir(parents=True)
    results = [
        {"unique_id": unique_id, "execution_time": seconds} for unique_id, seconds in times.items()
    ]
    (folder / "run_results.json").write_text(
        json.dumps({"elapsed_time": sum(times.values()), "results": results})
    )


def test_dbt_summaries_list_every_models_time_not_only_the_slowest(tmp_path: Path) -> None:
    module = load_benchmark("bench_pipeline")
    models = {f"model.omnicdp.m{i:02d}": float(i) for i in range(12)}
    since = time.time() - 1
    _run_results(tmp_path / "dbt_models-abc", {**models, "test.omnicdp.unique_x.1": 9.0})

    [summary] = module._dbt_target_runs(tmp_path, since)

    assert len(summary["slowest_models"]) == 8
    assert summary["model_seconds"] == {f"m{i:02d}": float(i) for i in range(12)}
    assert summary["tests"] == 1


def test_each_run_keeps_its_results_under_its_start_time_and_commit(tmp_path: Path) -> None:
    module = load_benchmark("bench_pipeline")
    first = {"started_at": "2026-12-04T21:10:33+00:00", "code": "7da3369", "nightly_seconds": 1}
    second = {"started_at": "2026-12-04T23:17:10+00:00", "code": "e77c1c5", "nightly_seconds": 2}

    kept_first = module.keep_history(tmp_path, first, "first table")
    kept_second = module.keep_history(tmp_path, second, "second table")

    assert kept_first.name == "2026-12-04T21-10-33-7da3369.json"
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == [
        "2026-12-04T21-10-33-7da3369.json",
        "2026-12-04T21-10-33-7da3369.md",
        "2026-12-04T23-17-10-e77c1c5.json",
        "2026-12-04T23-17-10-e77c1c5.md",
    ]
    assert json.loads(kept_first.read_text())["nightly_seconds"] == 1
    assert json.loads(kept_second.read_text())["nightly_seconds"] == 2
    assert kept_second.with_suffix(".md").read_text() == "second table"


def test_each_steps_peak_memory_comes_from_the_samples_taken_while_it_ran() -> None:
    module = load_benchmark("bench_pipeline")
    mb = 2**20
    # (time, process tree bytes, run process bytes), one sample a second.
    samples = [
        (100.0, 500 * mb, 500 * mb),
        (101.0, 2900 * mb, 900 * mb),  # a dbt step: its dbt process holds most of the tree
        (102.0, 1900 * mb, 900 * mb),
        (103.0, 2600 * mb, 2600 * mb),  # an ML step in the run's own process
        (104.0, 1200 * mb, 1200 * mb),
    ]
    windows = {
        "dbt_models": [100.5, 102.5],
        "churn": [102.5, 104.0],
        "a_check": [104.2, 104.3],  # shorter than the sampling interval: nothing to report
    }

    peaks = module._step_peaks(samples, windows)

    assert peaks == {
        "dbt_models": {"process": 900, "tree": 2900},
        "churn": {"process": 2600, "tree": 2600},
    }

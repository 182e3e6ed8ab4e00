"""`make bench` refuses to start when --work lacks the disk the run will write, instead of
failing with a full disk partway through (at 1M customers, about 20 GB with a kept snapshot)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.benchmarks._load import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_larger_than_the_free_disk_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    work = tmp_path / "bench"
    free = shutil.disk_usage(tmp_path).free
    # Enough customers that the estimate exceeds this disk, whatever its size.
    customers = free // 1_000 + 1

    done = subprocess.run(
        [
            sys.executable,
            ROOT / "benchmarks" / "bench_pipeline.py",
            "--customers",
            str(customers),
            "--work",
            work,
            "--baseline-customers",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert "not enough disk space for the benchmark in" in done.stderr
    assert "GB free on" in done.stderr and "--skip-disk-check" in done.stderr
    assert not work.exists()


def test_the_estimate_counts_what_the_run_adds_and_what_it_deletes(tmp_path: Path) -> None:
    module = load_benchmark("bench_pipeline")
    args = module.argument_parser().parse_args(["--work", str(tmp_path), "--keep-snapshot"])
    warehouse = module.WAREHOUSE_BYTES_PER_CUSTOMER_YEAR * 1000

    fresh = module.disk_needed(args, 1000, full_only=False)
    assert fresh == {
        "warehouse": warehouse,
        "generated data": module.GENERATED_BYTES_PER_CUSTOMER_YEAR * 1000,
        "replay copy": warehouse,
        "pre-nightly snapshot": warehouse,
    }

    # Data generated before is reused; the last run's folder is deleted first.
    home = tmp_path / "c1000_d365_s42"
    (home / "truth").mkdir(parents=True)
    (home / "truth" / "manifest.json").write_text("{}")
    (home / "run").mkdir()
    (home / "run" / "warehouse.duckdb").write_bytes(b"x" * 4096)
    again = module.disk_needed(args, 1000, full_only=True)
    assert again == {"warehouse": warehouse, "last run, deleted": -4096}

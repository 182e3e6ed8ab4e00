"""Generation and ingestion timings at a given scale (`make bench`, not part of the tests).

Each stage runs in its own process so its peak RSS is its own (os.wait4). Ingestion is
timed twice on fresh warehouses: through Dagster (`run_pipeline`, what `cdp run` does) and
with the bare loader in a loop over sources, so the orchestration overhead is a ratio
measured in the same run.

    .venv/bin/python benchmarks/bench_foundation.py --customers 100000 --days 365
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GENERATE = """
import datetime as dt, sys, datagen
datagen.generate(sys.argv[1], customers=int(sys.argv[2]), days=int(sys.argv[3]), seed=42,
                 end_date=dt.date(2026, 11, 22))
"""
DAGSTER_INGEST = """
import os, sys
from pathlib import Path
os.environ["DAGSTER_HOME"] = ""
from orchestration.runner import run_pipeline
result = run_pipeline(Path(sys.argv[1]), Path(sys.argv[2]), include_downstream=False)
failed = [(s.name, s.error) for s in result.stages if not s.success]
print("failed stages:", failed, file=sys.stderr)
"""
BARE_INGEST = """
import sys, duckdb
from orchestration.ingestion.contract import SOURCES
from orchestration.ingestion.loader import load_partitions, partition_dates
con = duckdb.connect(sys.argv[2])
for source in SOURCES:
    load_partitions(con, sys.argv[1], source, partition_dates(sys.argv[1], source))
"""


def _stage(name: str, code: str, *args: str) -> dict[str, object]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {name} failed with status {status}")
    return {
        "stage": name,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }


def _rows(warehouse: Path) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and table_name not like '\\_%' escape '\\'"
        ).fetchall()
        return sum(con.execute(f"select count(*) from raw.{t}").fetchone()[0] for (t,) in tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--skip-bare", action="store_true", help="skip the bare-loader baseline")
    args = parser.parse_args()
    work = args.work / f"c{args.customers}_d{args.days}"
    work.mkdir(parents=True, exist_ok=True)
    landing = work / "landing"
    results = []
    if not (work / "truth" / "manifest.json").exists():
        results.append(
            _stage("generation", GENERATE, str(work), str(args.customers), str(args.days))
        )
    for name in ("dagster.duckdb", "bare.duckdb"):
        (work / name).unlink(missing_ok=True)
    results.append(
        _stage("ingestion via Dagster", DAGSTER_INGEST, str(landing), str(work / "dagster.duckdb"))
    )
    rows = _rows(work / "dagster.duckdb")
    if not args.skip_bare:
        results.append(
            _stage("ingestion, bare loader", BARE_INGEST, str(landing), str(work / "bare.duckdb"))
        )
    report = {
        "customers": args.customers,
        "days": args.days,
        "rows_ingested": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "stages": results,
    }
    by_name = {r["stage"]: r for r in results}
    if "ingestion, bare loader" in by_name:
        report["dagster_overhead_ratio"] = round(
            by_name["ingestion via Dagster"]["seconds"]
            / max(by_name["ingestion, bare loader"]["seconds"], 0.1),
            2,
        )
    ingest = by_name["ingestion via Dagster"]["seconds"]
    report["ingested_rows_per_second"] = round(rows / ingest)
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    stem = f"foundation_c{args.customers}_d{args.days}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    lines = ["| stage | seconds | peak RSS (MB) |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {r['seconds']} | {r['peak_rss_mb']} |" for r in results]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(report, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

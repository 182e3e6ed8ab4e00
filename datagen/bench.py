"""Benchmark the generator: ``python -m datagen.bench --customers 100000 --days 365``."""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .generator import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--out", type=Path, default=None, help="output dir (default: a temp dir, removed)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp output")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="datagen-bench-"))
    t0 = time.perf_counter()
    s = generate(
        out,
        customers=a.customers,
        days=a.days,
        seed=a.seed,
        end_date=dt.date(2025, 12, 31),
        progress=None
        if a.quiet
        else lambda m: print(f"[{time.perf_counter() - t0:7.1f}s] {m}", file=sys.stderr),
    )
    secs = time.perf_counter() - t0
    total = sum(s.rows.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(
        f"customers={a.customers:,} days={a.days} seconds={secs:.1f} rows={total:,} rows/s={total / secs:,.0f} "
        f"peak_rss_mb={rss_mb:,.0f} files={s.files:,} size_mb={size:,.0f}"
    )
    for k, v in s.rows.items():
        print(f"  {k:20s} {v:>12,}")
    if a.out is None and not a.keep:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

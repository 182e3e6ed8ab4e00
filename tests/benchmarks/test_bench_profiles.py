"""The bench's EXPLAIN ANALYZE summaries report each statement's own memory figure (real DuckDB)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.benchmarks._load import load_benchmark


def test_each_statement_reports_what_it_allocated_not_the_instances_peak(tmp_path: Path) -> None:
    bench = load_benchmark("bench_pipeline")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    statements = {
        "model.p.big": "create table big as select range % 500000 as k, count(*) as n "
        "from range(4000000) group by all",
        "model.p.small": "create table small as select range as k from range(10)",
    }
    summaries = {}
    for rank, (node, sql) in enumerate(statements.items()):
        plan = bench._explain_analyze(con, sql)
        summaries[node] = bench._profile_summary(node, 1.0, plan, tmp_path, rank)
    big, small = summaries["model.p.big"], summaries["model.p.small"]

    assert big["allocated_memory_mb"] > 10 * max(small["allocated_memory_mb"], 1)
    # DuckDB's system peak is the instance's so far: the small statement, run second,
    # inherits the big one's; that is why it is not the figure shown per statement.
    assert (
        small["instance_peak_buffer_memory_mb"]
        >= big["instance_peak_buffer_memory_mb"]
        > small["allocated_memory_mb"]
    )
    assert con.execute("select count(*) from big").fetchone() == (500000,)
    assert (tmp_path / "1_big.json").is_file() and (tmp_path / "2_small.summary.json").is_file()

"""The incremental ratio comes with its floor: what the nightly would still take if every dbt
model and test ran in no time, so a run shows whether SQL work alone can reach the target."""

from __future__ import annotations

from types import SimpleNamespace

from tests.benchmarks._load import load_benchmark


def _stage(stage: str, phase: str, seconds: float, dbt_nodes: list[float] | None = None) -> dict:
    details = {"dbt": [{"node_seconds": s} for s in dbt_nodes]} if dbt_nodes else {}
    return {"stage": stage, "phase": phase, "seconds": seconds, "ok": True, "details": details}


RECORDS = [
    _stage("full-ingestion", "full", 222.0),
    _stage("full-build", "full", 487.1, [111.7, 118.7, 24.6]),
    _stage("full-planning", "full", 8.1),
    _stage("nightly-ingestion", "nightly", 10.8),
    _stage("nightly-build", "nightly", 200.1, [30.0, 90.0, 16.6]),
    _stage("nightly-planning", "nightly", 9.1),
]


def test_the_floor_is_the_nightly_less_its_dbt_nodes_only() -> None:
    module = load_benchmark("bench_pipeline")

    # 220.0 s of nightly, of which 136.6 s ran dbt models and tests; the full build's dbt
    # nodes do not count.
    assert module.nightly_outside_dbt_nodes(RECORDS) == 83.4


def test_no_floor_when_a_nightly_stage_failed() -> None:
    module = load_benchmark("bench_pipeline")
    records = [dict(r) for r in RECORDS]
    records[4]["ok"] = False

    assert module.nightly_outside_dbt_nodes(records) is None


def test_the_incremental_ratio_reports_the_floor_against_the_full_build() -> None:
    module = load_benchmark("bench_pipeline")
    bench = module.Bench.__new__(module.Bench)
    bench.records = RECORDS
    bench.baseline = None
    bench.args = SimpleNamespace(customers=1_000_000)
    report = {
        "full_build_seconds": bench.phase_total("full"),
        "nightly_seconds": bench.phase_total("nightly"),
        "peak_rss_mb": 3000,
    }

    ratio = bench.ratio_figures(report)["incremental_vs_full"]

    assert ratio["value"] == round(220.0 / 717.2, 3)
    assert ratio["met"] is False
    assert ratio["outside_dbt_nodes_seconds"] == 83.4
    assert ratio["with_dbt_nodes_in_no_time"] == round(83.4 / 717.2, 3)

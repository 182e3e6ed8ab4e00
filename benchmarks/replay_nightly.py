"""Nightly stages of the bench, replayed on a copy of the warehouse the bench kept before them.

One change is measured on the 1M nightly in minutes, not a whole `make bench`:

    make bench BENCH_ARGS=--keep-snapshot      # once: keeps <home>/prenightly/
    .venv/bin/python benchmarks/replay_nightly.py --stages lifecycle

Each stage runs as the bench runs it (`bench_pipeline.run_stage`: the same child process,
params, environment and untimed dbt parse) on the current checkout, in pipeline order, on one
copy of the kept snapshot, which is never changed. A stage reads what the stages before it
built, so those run first, as prerequisites (reported, not compared). Per stage: wall seconds,
Dagster step seconds, dbt elapsed / model / test seconds and the slowest models, each against
the same stage of the nightly in <home>/results.json (the latest bench) as a ratio, replayed
over bench; the figures are written to <work>/replay.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_pipeline as bench  # noqa: E402

DEFAULT_HOME = bench.ROOT / "data" / "bench" / "c1000000_d365_s42"
SLOWEST = 10
# Counts, not times: no ratio.
NOT_COMPARED = {"dbt_invocations"}


def stage_names() -> list[str]:
    """The nightly's stages after ingestion, in pipeline order (the snapshot is taken after
    ingestion)."""
    return [stage.name for stage in bench.pipeline_stages("", bench.RunDir(Path()))]


def plan(requested: list[str]) -> list[tuple[str, bool]]:
    """The stages to run, in pipeline order, each with whether it was asked for: every stage up
    to the last one asked for runs, since each reads what the ones before it built; the others
    are prerequisites."""
    order = stage_names()
    unknown = [name for name in requested if name not in order]
    if unknown or not requested:
        raise ValueError(
            f"unknown stages {','.join(unknown) or '(none asked for)'}: the nightly's stages "
            f"after ingestion are {','.join(order)}"
        )
    last = max(order.index(name) for name in requested)
    return [(name, name in requested) for name in order[: last + 1]]


def load_snapshot(home: Path) -> dict[str, Any]:
    """The kept snapshot's record (bench_pipeline.Bench.keep_prenightly), checked against the
    generated data its landing links to."""
    kept = bench.prenightly_dir(home)
    record = kept / bench.SNAPSHOT_RECORD
    if not record.exists():
        raise SystemExit(
            f"no kept pre-nightly snapshot in {kept}: run the bench with --keep-snapshot first, "
            "`make bench BENCH_ARGS=--keep-snapshot` (with CUSTOMERS=... DAYS=... for another "
            "scale) or `.venv/bin/python benchmarks/bench_pipeline.py --keep-snapshot ...`"
        )
    snapshot = json.loads(record.read_text())
    generation = home / "generation.json"
    generated = (
        json.loads(generation.read_text()).get("generator_sha256") if generation.exists() else None
    )
    if generated != snapshot["generator_sha256"]:
        raise SystemExit(
            f"the generated data in {snapshot['landing']} is not the data the snapshot was "
            f"kept with (generator {generated}, snapshot {snapshot['generator_sha256']}): run "
            "the bench with --keep-snapshot again"
        )
    return snapshot


def restore(run: bench.RunDir, source: Path, landing: Path) -> None:
    """Lay `run` out as the nightly found it: the warehouse and model artefacts of `source` (the
    kept snapshot, or the state the prerequisites left) and every generated date landed."""
    started = time.perf_counter()
    if run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True)
    bench.copy_database(source / run.warehouse.name, run.warehouse)
    if (source / "models").exists():
        shutil.copytree(source / "models", run.models)
    for source_dir in sorted(landing.iterdir()):
        for date_dir in sorted(source_dir.iterdir()):
            bench.link_date(run.landing, date_dir)
    print(
        f"warehouse copied from {source} ({run.warehouse.stat().st_size / 2**30:.2f} GiB) in "
        f"{time.perf_counter() - started:.1f} s (untimed)",
        flush=True,
    )


def save(run: bench.RunDir, state: Path) -> None:
    """Keep what the prerequisites left, so that every repeat starts from it."""
    if state.exists():
        shutil.rmtree(state)
    bench.copy_database(run.warehouse, state / run.warehouse.name)
    if run.models.exists():
        shutil.copytree(run.models, state / "models")


def stage_figures(record: dict[str, Any]) -> dict[str, Any]:
    """A stage record's figures, from this replay or from results.json: wall seconds, peak
    memory, Dagster's step seconds, and the stage's dbt invocations added up (models by name)."""
    details = record.get("details", {})
    runs = details.get("dbt", [])
    models: dict[str, float] = {}
    for run in runs:
        for name, seconds in run.get("model_seconds", {}).items():
            models[name] = round(models.get(name, 0.0) + seconds, 2)
    model_total = sum(models.values())
    return {
        "seconds": record["seconds"],
        "peak_tree_rss_mb": record.get("peak_tree_rss_mb"),
        "materialize_seconds": details.get("materialize_seconds"),
        "steps": details.get("steps", {}),
        "step_peak_rss_mb": details.get("step_peak_rss_mb", {}),
        "dbt_invocations": len(runs),
        "dbt_elapsed_seconds": round(sum(r["dbt_elapsed_seconds"] for r in runs), 2)
        if runs
        else None,
        "dbt_model_seconds": round(model_total, 2) if runs else None,
        # Every node that is not a model: data tests and unit tests.
        "dbt_test_seconds": round(sum(r["node_seconds"] for r in runs) - model_total, 2)
        if runs
        else None,
        "model_seconds": dict(sorted(models.items(), key=lambda m: -m[1])),
    }


def median_figures(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the repeats (steps, models and per-step peaks by name)."""
    if len(repeats) == 1:
        return repeats[0]
    return _median(repeats)


def _median(values: list[Any]) -> Any:
    if isinstance(values[0], dict):
        # A figure by name (steps, models, a step's peaks): each name over the repeats that
        # have it, numbers sorted largest first.
        names = dict.fromkeys(name for value in values for name in value)
        by_name = {n: _median([value[n] for value in values if n in value]) for n in names}
        if all(isinstance(v, (int, float)) for v in by_name.values()):
            return dict(sorted(by_name.items(), key=lambda m: -m[1]))
        return by_name
    # Equal values (counts, a figure a stage does not have) are kept as they are.
    if len(set(values)) == 1:
        return values[0]
    return round(statistics.median(values), 2)


def _ratio(replayed: float | None, benched: float | None) -> float | None:
    return round(replayed / benched, 2) if replayed is not None and benched else None


def compare(figures: dict[str, Any], benched: dict[str, Any]) -> dict[str, Any]:
    """Replayed / bench for every figure both have, steps, models and step peaks by name."""
    ratios: dict[str, Any] = {}
    for key, value in figures.items():
        other = benched.get(key)
        if key in NOT_COMPARED or other is None:
            continue
        if isinstance(value, dict):
            if nested := compare(value, other):
                ratios[key] = nested
        elif (ratio := _ratio(value, other)) is not None:
            ratios[key] = ratio
    return ratios


def bench_nightly(home: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """The figures of the nightly stages of the latest bench (<home>/results.json) by stage
    name, and which run that was."""
    results = home / "results.json"
    if not results.exists():
        return {}, None
    report = json.loads(results.read_text())
    stages = {
        record["stage"].removeprefix("nightly-"): stage_figures(record)
        for record in report.get("stages", [])
        if record.get("phase") == "nightly"
        and record.get("ok")
        and not record.get("details", {}).get("skipped")
    }
    return stages, {"started_at": report.get("started_at"), "code": report.get("code")}


def _seconds(value: float | None, benched: float | None, unit: str = " s") -> str:
    if value is None:
        return "n/a"
    text = f"{value:g}{unit}"
    if benched is not None:
        ratio = _ratio(value, benched)
        text += f" (bench {benched:g}{unit}" + (f", x{ratio:.2f})" if ratio is not None else ")")
    return text


def describe(entry: dict[str, Any]) -> list[str]:
    """The lines printed for one stage."""
    figures, benched = entry["figures"], entry["bench"] or {}
    name = entry["stage"]
    if entry["prerequisite"]:
        return [f"{name} (prerequisite, not compared): {figures['seconds']:g} s"]
    walls = [r["seconds"] for r in entry["repeats"]]
    repeats = f" (median of {len(walls)}: {', '.join(f'{w:g}' for w in walls)})"
    lines = [
        f"{name}: wall {_seconds(figures['seconds'], benched.get('seconds'))}"
        + (repeats if len(walls) > 1 else "")
        + "; process tree peak "
        + _seconds(figures["peak_tree_rss_mb"], benched.get("peak_tree_rss_mb"), " MB")
    ]
    if not entry["bench"]:
        lines.append("  no figures of this stage in the bench's results.json to compare with")
    steps, bench_steps = figures["steps"], benched.get("steps", {})
    if steps:
        lines.append(
            "  Dagster steps: "
            + ", ".join(f"{step} {_seconds(s, bench_steps.get(step))}" for step, s in steps.items())
        )
    if peaks := figures.get("step_peak_rss_mb"):
        bench_peaks = benched.get("step_peak_rss_mb", {})
        lines.append(
            "  step peak RSS, the run's process / its tree: "
            + ", ".join(
                f"{step} {peak['process']:g} / {peak['tree']:g} MB"
                + (
                    f" (bench {b['process']:g} / {b['tree']:g} MB)"
                    if (b := bench_peaks.get(step))
                    else ""
                )
                for step, peak in peaks.items()
            )
        )
    if not steps and figures["materialize_seconds"] is not None:
        lines.append(
            "  Dagster materialize (the stage records no steps): "
            + _seconds(figures["materialize_seconds"], benched.get("materialize_seconds"))
        )
    if invocations := figures["dbt_invocations"]:
        lines.append(
            f"  dbt ({invocations} invocation{'s' if invocations > 1 else ''}): elapsed "
            + _seconds(figures["dbt_elapsed_seconds"], benched.get("dbt_elapsed_seconds"))
            + ", models "
            + _seconds(figures["dbt_model_seconds"], benched.get("dbt_model_seconds"))
            + ", tests "
            + _seconds(figures["dbt_test_seconds"], benched.get("dbt_test_seconds"))
        )
        bench_models = benched.get("model_seconds", {})
        slowest = list(figures["model_seconds"].items())[:SLOWEST]
        lines.append(
            "  slowest models: "
            + ", ".join(f"{m} {_seconds(s, bench_models.get(m))}" for m, s in slowest)
        )
    return lines


def replay(
    home: Path, requested: list[str], work: Path, repeat: int
) -> tuple[dict[str, Any], bool]:
    """Run the stages; the figures (replay.json) and whether every stage succeeded."""
    snapshot = load_snapshot(home)
    stages = plan(requested)
    kept = bench.prenightly_dir(home)
    run, state = bench.RunDir(work / "run"), work / "after_prerequisites"
    for scratch in (run.path, state):
        for protected in (kept, home / "run", home / "landing"):
            a, b = scratch.resolve(), protected.resolve()
            if a.is_relative_to(b) or b.is_relative_to(a):
                raise SystemExit(f"--work {work}: {scratch} would overwrite {protected}")
    benched, bench_run = bench_nightly(home)
    if bench_run is not None:
        bench_run["same_run_as_snapshot"] = bench_run["started_at"] == snapshot["bench_started_at"]
    output: dict[str, Any] = {
        "home": str(home),
        "snapshot": snapshot,
        "code": bench.code_version(),
        "bench_results": bench_run,
        "repeat": repeat,
        "stages": [],
    }
    print(
        f"snapshot of {snapshot['customers']:,} customers x {snapshot['days']} days (seed "
        f"{snapshot['seed']}) before the nightly of {snapshot['as_of']}, kept by the bench of "
        f"{snapshot['bench_started_at']} on {snapshot['code']}; replaying on "
        f"{output['code']}",
        flush=True,
    )
    if bench_run is None:
        print(f"no {home / 'results.json'}: nothing to compare with", flush=True)
    elif not bench_run["same_run_as_snapshot"]:
        print(
            f"note: results.json is another bench run ({bench_run['started_at']} on "
            f"{bench_run['code']}) than the one that kept the snapshot",
            flush=True,
        )
    from orchestration.defs.transform.project import prepare_manifest

    prepare_manifest()
    landing = Path(snapshot["landing"])
    entries = {
        name: {"stage": name, "prerequisite": not asked, "repeats": []} for name, asked in stages
    }
    by_name = {s.name: s for s in bench.pipeline_stages(snapshot["as_of"], run)}

    def run_one(name: str, asked: bool) -> bool:
        stage = by_name[name]
        record = bench.run_stage(
            work,
            run,
            f"nightly-{name}",
            stage.kind,
            stage.params,
            "replay" if asked else "prerequisite",
            stage.dbt_vars,
        )
        if record["ok"]:
            entries[name]["repeats"].append(stage_figures(record))
        else:
            entries[name]["error"] = record["error"]
        return record["ok"]

    # The prerequisites before the first stage asked for run once; every repeat starts from
    # what they left (a prerequisite between two stages asked for runs in every repeat).
    first_asked = next(i for i, (_, asked) in enumerate(stages) if asked)
    leading, measured = stages[:first_asked], stages[first_asked:]
    restore(run, kept, landing)
    ok = all(run_one(name, asked) for name, asked in leading)
    if ok and leading and repeat > 1:
        save(run, state)
    for index in range(repeat if ok else 0):
        if index:
            restore(run, state if leading else kept, landing)
        if not all(run_one(name, asked) for name, asked in measured):
            ok = False
            break
    for entry in entries.values():
        if entry["repeats"]:
            entry["figures"] = median_figures(entry["repeats"])
            entry["bench"] = None if entry["prerequisite"] else benched.get(entry["stage"])
            entry["ratios"] = compare(entry["figures"], entry["bench"] or {})
        output["stages"].append(entry)
    return output, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home",
        type=Path,
        default=DEFAULT_HOME,
        help="the bench's folder of one scale, data/bench/c<customers>_d<days>_s<seed> "
        f"(default {DEFAULT_HOME.relative_to(bench.ROOT)})",
    )
    parser.add_argument(
        "--stages",
        default=",".join(stage_names()),
        help="comma-separated nightly stages to measure (default: all of them, in order); the "
        "stages before them run first as prerequisites",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder for the copy, logs and replay.json (default <home>/replay_nightly); "
        "its run/ is replaced",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure the stages this many times, each on a fresh copy (figures: the median)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    requested = [name.strip() for name in args.stages.split(",") if name.strip()]
    try:
        plan(requested)
    except ValueError as error:
        parser.error(str(error))
    work = args.work or args.home / "replay_nightly"
    # As in the bench: a stage process must not outlive the replay (run_stage kills it).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    output, ok = replay(args.home, requested, work, args.repeat)
    work.mkdir(parents=True, exist_ok=True)
    (work / "replay.json").write_text(json.dumps(output, indent=2, default=str))
    print()
    for entry in output["stages"]:
        if "figures" in entry:
            print("\n".join(describe(entry)))
        if "error" in entry:
            print(f"{entry['stage']} FAILED: {entry['error'][:2000]}")
    print(f"\nfigures: {work / 'replay.json'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

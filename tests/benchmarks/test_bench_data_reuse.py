"""`make bench` reuses generated data only when the arguments and the generator code match:
figures from data of an older generator are not comparable, and nothing else would say so.

Generation runs for real (a child process, as in `make bench`) at 300 customers x 30 days."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

from tests.benchmarks._load import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


def _bench_pipeline() -> ModuleType:
    return load_benchmark("bench_pipeline")


def _bench(module: ModuleType, work: Path) -> object:
    args = argparse.Namespace(customers=300, days=30, seed=3, work=work)
    return module.Bench(args)


def test_data_is_reused_only_from_the_same_generator_code(tmp_path: Path) -> None:
    module = _bench_pipeline()
    first = _bench(module, tmp_path)
    first.ensure_data()
    [generated] = first.records
    assert generated["ok"] and not generated.get("reused")
    record_file = first.home / "generation.json"
    fingerprint = module.generator_fingerprint()
    assert json.loads(record_file.read_text())["generator_sha256"] == fingerprint
    landed = sorted(p.relative_to(first.home) for p in (first.home / "landing").rglob("*"))
    assert landed

    again = _bench(module, tmp_path)
    again.ensure_data()
    assert again.records[0]["reused"] is True

    # Data recorded with other generator code (or with none recorded, as before this check)
    # is generated again, and the record then names the current code.
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "generator_sha256": "0" * 16}))
    stale = _bench(module, tmp_path)
    stale.ensure_data()
    assert not stale.records[0].get("reused") and stale.records[0]["ok"]
    assert json.loads(record_file.read_text())["generator_sha256"] == fingerprint
    # The same seed and arguments give the same files.
    assert sorted(p.relative_to(stale.home) for p in (stale.home / "landing").rglob("*")) == landed


def test_scaling_baseline_is_reused_only_from_the_same_commit(tmp_path: Path) -> None:
    module = _bench_pipeline()
    results = tmp_path / "results.json"
    assert not module.baseline_reusable(results, "abc1234")
    results.write_text(json.dumps({"code": "abc1234", "full_build_seconds": 240.0}))
    assert module.baseline_reusable(results, "abc1234")
    assert not module.baseline_reusable(results, "def5678")
    # Uncommitted changes have no name: the baseline is measured again.
    results.write_text(json.dumps({"code": "abc1234-dirty"}))
    assert not module.baseline_reusable(results, "abc1234-dirty")
    # Results from before the commit was recorded.
    results.write_text(json.dumps({"full_build_seconds": 240.0}))
    assert not module.baseline_reusable(results, "abc1234")
    # Outside a git checkout (no commit to name) nothing is reused either.
    assert not module.baseline_reusable(results, None)


def test_the_fingerprint_covers_the_generator_not_the_modules_that_only_read_its_data(
    tmp_path: Path, monkeypatch
) -> None:
    module = _bench_pipeline()
    package = tmp_path / "datagen"
    package.mkdir()
    generator, diagnostic = package / "people.py", package / "ceiling.py"
    generator.write_text("RATE = 1\n")
    diagnostic.write_text("LEVELS = 3\n")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    before = module.generator_fingerprint()

    diagnostic.write_text("LEVELS = 4\n")
    assert module.generator_fingerprint() == before
    generator.write_text("RATE = 2\n")
    assert module.generator_fingerprint() != before


def test_the_modules_left_out_of_the_fingerprint_are_not_part_of_generation() -> None:
    import subprocess
    import sys

    module = _bench_pipeline()
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, datagen; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in module.NOT_GENERATOR:
        assert f"'datagen.{name.removesuffix('.py')}'" not in loaded

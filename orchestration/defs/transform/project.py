"""The dbt project, shared by the dbt assets, the dbt resource and the CLI."""

import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster import get_dagster_logger
from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

# dbt is installed beside this interpreter; `.venv/bin/dagster` and `.venv/bin/cdp` run
# without the venv on PATH, so the executable is named explicitly rather than looked up.
_BESIDE = Path(sys.executable).parent / "dbt"
DBT_EXECUTABLE = str(_BESIDE) if _BESIDE.exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
logger = get_dagster_logger()

KEEP_TARGETS_VARIABLE = "DBT_TARGET_KEEP_INVOCATIONS"
DEFAULT_KEEP_TARGETS = 20
# Folders younger than this are never pruned, whatever their rank: another process (a `cdp`
# run beside a deployment, a test worker) may still be writing into one.
_PRUNE_MIN_AGE_SECONDS = 3600.0
# dagster-dbt names each invocation's folder <op name>-<run id[:7]>-<random[:7]>, or just the
# random part outside a run; nothing else under target/ looks like that.
_INVOCATION_FOLDER = re.compile(r"(?:[A-Za-z0-9_]+-[0-9a-f]{7}-)?[0-9a-f]{7}")


def kept_target_invocations() -> int:
    """How many per-invocation dbt target folders to keep (DBT_TARGET_KEEP_INVOCATIONS)."""
    raw = os.environ.get(KEEP_TARGETS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_KEEP_TARGETS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{KEEP_TARGETS_VARIABLE}={raw!r}: must be a whole number of dbt invocation folders "
            f"to keep, 1 or more (default {DEFAULT_KEEP_TARGETS})"
        )
    return int(raw)


def _last_written(folder: Path) -> float:
    # dbt appends to dbt.log and writes run_results.json inside the folder, which does not
    # touch the folder's own mtime.
    stamps = [folder.stat().st_mtime]
    stamps += [entry.stat().st_mtime for entry in folder.iterdir() if entry.is_file()]
    return max(stamps)


def prune_invocation_targets(
    directory: Path, keep: int, *, min_age_seconds: float = _PRUNE_MIN_AGE_SECONDS
) -> list[Path]:
    """Delete all but the `keep` most recently written dbt invocation folders in `directory`
    (folders written within `min_age_seconds` always stay) and return the deleted ones.

    dagster-dbt gives every dbt invocation its own target folder (compiled SQL, dbt.log,
    run_results.json and a copy of the manifest: 5-14 MB at 1M customers) and never deletes
    one. A deployment makes dozens a day (the nightly build's five, hourly trigger refreshes,
    every campaign run), so target/ grew without bound."""
    if not directory.is_dir():
        return []
    folders = []
    for entry in directory.iterdir():
        if entry.is_dir() and _INVOCATION_FOLDER.fullmatch(entry.name):
            try:
                folders.append((_last_written(entry), entry))
            except FileNotFoundError:  # pruned by another process meanwhile
                continue
    folders.sort(reverse=True)
    now = time.time()
    deleted = []
    for written, folder in folders[keep:]:
        if now - written >= min_age_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder)
    return deleted


class CdpDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the two things it does before every invocation that this
    project never uses, about 4 s of a 2-core machine's time per dbt step (measured with
    cProfile on a customer-view run; every nightly run has four dbt steps and the trigger path
    one):

    - it runs `dbt --version` in a new Python process to learn the version; the executable
      beside this interpreter is the installed dbt-core package, so its metadata says the same;
    - it loads dbt's macros into an in-process adapter, used only by `fetch_row_counts` and
      `fetch_column_metadata`, which no asset here calls.

    It also deletes old per-invocation target folders before each invocation, keeping the
    newest DBT_TARGET_KEEP_INVOCATIONS (see `prune_invocation_targets`).

    All three are private methods of the pinned dagster-dbt version (uv.lock);
    tests/orchestration/test_dbt_resource.py fails if an upgrade changes them.
    """

    @cached_property
    def _cli_version(self) -> Version:
        if self.dbt_executable == str(_BESIDE):
            return Version(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None

    def _get_unique_target_path(self, *, context) -> Path:
        # Called once per invocation that is not given a target path, just before dbt starts:
        # the moment to make room for the folder it names (kept + this one).
        path = super()._get_unique_target_path(context=context)
        parent = path.parent if path.is_absolute() else Path(self.project_dir) / path.parent
        keep = kept_target_invocations()
        try:
            prune_invocation_targets(parent, keep - 1)
        except OSError as error:
            # Housekeeping: a folder that cannot be read or deleted must not fail the build.
            logger.warning("could not prune old dbt target folders in %s: %s", parent, error)
        return path


def dbt_resource() -> DbtCliResource:
    return CdpDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def prepare_manifest() -> Path:
    """Parse the dbt project (partial parsing keeps this to a few seconds) and return the manifest.

    Same as dagster-dbt's preparer, but with our dbt executable (the preparer looks on PATH),
    and the manifest is swapped in atomically: dbt writes manifest.json in place, and another
    process loading the definitions meanwhile (a second test worker, a sensor tick beside a
    `cdp` run) read half a file and failed with a JSONDecodeError. dbt parses in a private
    target directory seeded with the partial-parse state, and both files are renamed into
    target/ when it is done.
    """
    target = dbt_project.project_dir / dbt_project.target_path  # target_path may be relative
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
    try:
        state = target / "partial_parse.msgpack"
        if state.exists():
            shutil.copy2(state, work / state.name)
        dbt_resource().cli(["parse", "--quiet"], target_path=work).wait()
        if (work / state.name).exists():
            os.replace(work / state.name, state)
        os.replace(work / "manifest.json", dbt_project.manifest_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dbt_project.manifest_path


# `dagster dev` re-parses on each load; everywhere else the CLI (which parses before every
# run), `make manifest` or the test session builds target/manifest.json. A fresh clone has
# no target/ at all: parse once rather than fail to load the code location.
if not dbt_project.manifest_path.exists() or os.environ.get("DAGSTER_IS_DEV_CLI"):
    prepare_manifest()

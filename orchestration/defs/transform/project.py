"""The dbt project, shared by the dbt assets, the dbt resource and the CLI."""

import importlib.metadata
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

# dbt is installed beside this interpreter; `.venv/bin/dagster` and `.venv/bin/cdp` run
# without the venv on PATH, so the executable is named explicitly rather than looked up.
_BESIDE = Path(sys.executable).parent / "dbt"
DBT_EXECUTABLE = str(_BESIDE) if _BESIDE.exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class CdpDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the two things it does before every invocation that this
    project never uses, about 4 s of a 2-core machine's time per dbt step (measured with
    cProfile on a customer-view run; every nightly run has four dbt steps and the trigger path
    one):

    - it runs `dbt --version` in a new Python process to learn the version; the executable
      beside this interpreter is the installed dbt-core package, so its metadata says the same;
    - it loads dbt's macros into an in-process adapter, used only by `fetch_row_counts` and
      `fetch_column_metadata`, which no asset here calls.

    Both are private methods of the pinned dagster-dbt version (uv.lock);
    tests/orchestration/test_dbt_resource.py fails if an upgrade changes them.
    """

    @cached_property
    def _cli_version(self) -> Version:
        if self.dbt_executable == str(_BESIDE):
            return Version(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


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

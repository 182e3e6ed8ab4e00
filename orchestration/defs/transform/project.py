"""The dbt project, shared by the dbt assets, the dbt resource and the CLI."""

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

# dbt is installed beside this interpreter; `.venv/bin/dagster` and `.venv/bin/cdp` run
# without the venv on PATH, so the executable is named explicitly rather than looked up.
_BESIDE = Path(sys.executable).parent / "dbt"
DBT_EXECUTABLE = str(_BESIDE) if _BESIDE.exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def prepare_manifest() -> Path:
    """Parse the dbt project (partial parsing keeps this to a few seconds) and return the manifest.

    Same as dagster-dbt's preparer, but with our dbt executable (the preparer looks on PATH).
    """
    dbt_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
    return dbt_project.manifest_path


# `dagster dev` re-parses on each load; everywhere else the CLI (which parses before every
# run), `make manifest` or the test session builds target/manifest.json. A fresh clone has
# no target/ at all: parse once rather than fail to load the code location.
if not dbt_project.manifest_path.exists() or os.environ.get("DAGSTER_IS_DEV_CLI"):
    prepare_manifest()

"""The dbt project, shared by the dbt assets, the dbt resource and the CLI."""

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

# dbt is installed beside this interpreter; `.venv/bin/dagster` and `.venv/bin/cdp` run
# without the venv on PATH, and dagster-dbt's manifest preparer looks dbt up on PATH.
_BIN = str(Path(sys.executable).parent)
if (Path(_BIN) / "dbt").exists() and _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses on reload; everywhere else `make manifest`, the CLI (which parses
# before every run) or the test session builds target/manifest.json.
dbt_project.prepare_if_dev()


def prepare_manifest() -> Path:
    """Parse the dbt project (partial parsing keeps this to a few seconds) and return the manifest."""
    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


if not dbt_project.manifest_path.exists():
    # A fresh clone has no target/: parse once rather than fail to load the code location.
    prepare_manifest()

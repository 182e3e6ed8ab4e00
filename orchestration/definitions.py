"""The one Definitions of the project: everything under ``orchestration/defs``."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # Steps run in parallel processes; DuckDB's single writer is protected by the
        # "duckdb" concurrency pool (limit 1, see dagster.yaml), not by a serial executor,
        # so readers and non-warehouse steps are not held up. The scheduled and sensor jobs
        # (nightly_build, refresh_triggers, each campaign's) run in process instead: their
        # steps are all writers, one after another, and a process per step only loaded the
        # code location again (measured in each job's definition).
        dg.Definitions(executor=dg.multiprocess_executor),
    )

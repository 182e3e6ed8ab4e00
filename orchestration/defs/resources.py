"""Resources: every path and secret comes from the environment through ``dg.EnvVar``."""

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource


class LandingZone(dg.ConfigurableResource):
    """The landing directory retailers export into: ``<path>/<source>/<YYYY-MM-DD>/<file>``."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            # Also read by dbt's profiles.yml, so Dagster and dbt always write one file.
            "duckdb": DuckDBResource(
                database=dg.EnvVar("DUCKDB_PATH"),
                # The same buffer limit as dbt's profile (DuckDB spills beyond it).
                connection_config={
                    "memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "2.5GB"),
                    "preserve_insertion_order": False,
                },
            ),
            "landing": LandingZone(path=dg.EnvVar("LANDING_DIR")),
        }
    )

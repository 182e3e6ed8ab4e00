"""Resources: every path and secret comes from the environment through ``dg.EnvVar``."""

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
            "duckdb": DuckDBResource(database=dg.EnvVar("DUCKDB_PATH")),
            "landing": LandingZone(path=dg.EnvVar("LANDING_DIR")),
        }
    )

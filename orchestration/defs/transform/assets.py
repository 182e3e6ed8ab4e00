"""All dbt models as Dagster assets, built with one `dbt build` (models and their tests)."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from orchestration.defs.transform.project import dbt_project, dbt_resource
from orchestration.defs.transform.translator import CdpDbtTranslator
from orchestration.ingestion.contract import SOURCES
from orchestration.ingestion.loader import ensure_tables


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=CdpDbtTranslator(),
    name="dbt_models",
    pool="duckdb",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource
) -> Iterator[Any]:
    """dbt staging, customer view and marts over `raw.*` in the DuckDB file at DUCKDB_PATH."""
    # A retailer may not send every source (orders only is common): empty raw tables let
    # every staging view compile, and downstream models simply see no rows.
    with duckdb.get_connection() as con:
        for source in SOURCES.values():
            ensure_tables(con, source)
    yield from dbt.cli(["build"], context=context).stream()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[dbt_models],
        resources={"dbt": dbt_resource()},
    )

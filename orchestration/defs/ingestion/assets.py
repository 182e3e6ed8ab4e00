"""One asset per landing source: ``LANDING_DIR/<source>/<date>/*`` → ``raw.<source>``.

The logic lives in :mod:`orchestration.ingestion` (pure, tested on temp DuckDB files);
these assets only choose the partitions, call the loader and report.
"""

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from duckdb import DuckDBPyConnection

from orchestration.defs.partitions import daily_partitions
from orchestration.defs.resources import LandingZone
from orchestration.ingestion.contract import SOURCES, Source
from orchestration.ingestion.expectations import ValidationSummary, validate_batch
from orchestration.ingestion.loader import PartitionResult, load_partitions, partition_dates

# Above this many landed rows the great-expectations suite runs on a deterministic sample
# (its cost is linear in rows; 250k rows find any systematic breakage):
# a first backfill of a year of order lines would not fit comfortably in pandas.
GX_MAX_ROWS = 250_000


class IngestionConfig(dg.Config):
    max_quarantine_share: float = 0.05
    """The blocking check fails when more than this share of landed rows was quarantined:
    a few bad rows are normal, a third of a file is a broken export worth stopping for."""
    min_quarantined_rows: int = 10
    """...and at least this many rows were quarantined: 2 bad rows of a 22-row store list
    is 9% but not a broken pipeline."""


def _dates_in_range(
    context: dg.AssetExecutionContext, landing: LandingZone, source: str
) -> list[dt.date]:
    window = context.partition_key_range
    start, end = dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)
    return [d for d in partition_dates(landing.root, source) if start <= d <= end]


def _partition_table(results: list[PartitionResult], limit: int = 40) -> str:
    lines = ["| date | status | files | rows loaded | quarantined |", "|---|---|---|---|---|"]
    interesting = [r for r in results if r.status != "unchanged"][-limit:]
    for r in interesting:
        lines.append(
            f"| {r.partition_date} | {r.status} | {r.files_loaded} | {r.rows_loaded} | {r.rows_quarantined} |"
        )
    hidden = len([r for r in results if r.status != "unchanged"]) - len(interesting)
    if hidden > 0:
        lines.append(f"| … {hidden} earlier partitions | | | | |")
    return "\n".join(lines)


def build_ingestion_asset(source: Source) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", source.name])
    required = ", ".join(source.required)
    description = f"""Raw `{source.name}` ({source.grain}) as landed in `LANDING_DIR/{source.name}/<YYYY-MM-DD>/`.

Reads csv, csv.gz, parquet and jsonl through DuckDB into `raw.{source.name}`: contract
columns typed (timestamps in UTC), unknown extra columns kept as text, plus `_partition_date`,
`_source_file`, `_line_number` and load metadata. Required: {required}.

- **Exactly once**: files are keyed by SHA-256 in `raw._loaded_files`; an unchanged partition
  is skipped, a changed one is replaced in one transaction, resent content is not loaded twice.
- **Quarantine**: rows breaking the contract go to `quarantine.rejected_rows` with file, line
  and reason; a file that cannot be parsed fails this asset naming the file, and its date is left
  as it was.
- **Checks**: a great-expectations suite on the landed rows and a quarantine-rate limit, both
  blocking.
"""

    @dg.asset(
        key=key,
        group_name="ingestion",
        description=description,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb",
        kinds={"duckdb"},
        check_specs=[
            dg.AssetCheckSpec(
                "great_expectations",
                asset=key,
                blocking=True,
                description="great-expectations suite on the rows landed by this run.",
            ),
            dg.AssetCheckSpec(
                "quarantine_rate",
                asset=key,
                blocking=True,
                description="Share of landed rows sent to quarantine stays under the configured limit.",
            ),
        ],
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        config: IngestionConfig,
        duckdb: DuckDBResource,
        landing: LandingZone,
    ) -> Iterator[dg.MaterializeResult]:
        dates = _dates_in_range(context, landing, source.name)
        with duckdb.get_connection() as con:
            results = load_partitions(
                con, landing.root, source.name, dates, run_id=context.run.run_id
            )
            loaded_dates = [r.partition_date for r in results if r.status == "loaded"]
            sample = _landed_rows(con, source, loaded_dates)
            total_rows = con.execute(f"select count(*) from raw.{source.name}").fetchone()[0]
        failed = [r for r in results if r.status == "failed"]
        reasons: Counter[str] = Counter()
        for r in results:
            reasons.update(r.quarantine_reasons)
        rows_loaded = sum(r.rows_loaded for r in results)
        rows_quarantined = sum(r.rows_quarantined for r in results)
        for r in results:
            if r.status == "loaded":
                context.log.info(
                    f"{source.name} {r.partition_date}: {r.rows_loaded} rows loaded, {r.rows_quarantined} quarantined"
                )
        if failed:
            # The other partitions are committed and will be skipped next time (ledger), so
            # failing here only asks for the broken files to be fixed and the run repeated.
            raise dg.Failure(
                description=f"{len(failed)} partition(s) of {source.name} could not be loaded: "
                + "; ".join(r.error or "" for r in failed),
                metadata={
                    "failed_files": dg.MetadataValue.md(
                        "\n".join(f"- {r.partition_date}: {r.error}" for r in failed)
                    ),
                    "partitions_loaded": len(loaded_dates),
                },
            )

        frame, rows_in_batch = sample
        validation = (
            validate_batch(source.name, frame, rows_in_batch=rows_in_batch)
            if rows_in_batch
            else None
        )
        share = (
            rows_quarantined / (rows_loaded + rows_quarantined)
            if rows_loaded + rows_quarantined
            else 0.0
        )
        rate_ok = (
            share <= config.max_quarantine_share or rows_quarantined < config.min_quarantined_rows
        )
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": total_rows,
                "rows_loaded": rows_loaded,
                "rows_quarantined": rows_quarantined,
                "quarantine_share": round(share, 6),
                "quarantine_reasons": dg.MetadataValue.json(dict(reasons.most_common())),
                "partitions_loaded": len(loaded_dates),
                "partitions_unchanged": sum(r.status == "unchanged" for r in results),
                "files_skipped_as_duplicates": dg.MetadataValue.json(
                    [f for r in results for f in r.files_skipped_duplicate]
                ),
                "partitions": dg.MetadataValue.md(_partition_table(results)),
            },
            check_results=[
                _gx_check_result(validation),
                dg.AssetCheckResult(
                    check_name="quarantine_rate",
                    passed=rate_ok,
                    metadata={
                        "quarantine_share": round(share, 6),
                        "limit": config.max_quarantine_share,
                        "rows_quarantined": rows_quarantined,
                        "min_quarantined_rows": config.min_quarantined_rows,
                    },
                    description=None
                    if rate_ok
                    else f"{share:.1%} of landed rows were quarantined (limit {config.max_quarantine_share:.0%}); "
                    "see quarantine.rejected_rows for the files and reasons.",
                ),
            ],
        )

    return _ingest


def _landed_rows(
    con: DuckDBPyConnection, source: Source, dates: list[dt.date]
) -> tuple[pd.DataFrame | None, int]:
    """The rows this run landed (contract columns only), sampled when there are many."""
    if not dates:
        return None, 0
    columns = ", ".join(f'"{c}"' for c in source.column_names) + ", _partition_date"
    where = "_partition_date in (select unnest(?::date[]))"
    count = con.execute(
        f"select count(*) from raw.{source.name} where {where}", [dates]
    ).fetchone()[0]
    sample = (
        f"using sample reservoir({GX_MAX_ROWS} rows) repeatable (42)" if count > GX_MAX_ROWS else ""
    )
    frame = con.execute(
        f"select {columns} from raw.{source.name} where {where} {sample}", [dates]
    ).df()
    return frame, count


def _gx_check_result(validation: ValidationSummary | None) -> dg.AssetCheckResult:
    if validation is None:
        return dg.AssetCheckResult(
            check_name="great_expectations",
            passed=True,
            metadata={"rows_validated": 0},
            description="Nothing new landed in this run.",
        )
    failures = validation.blocking_failures
    return dg.AssetCheckResult(
        check_name="great_expectations",
        passed=validation.success,
        metadata={
            "rows_validated": validation.rows_validated,
            "rows_in_batch": validation.rows_in_batch,
            "sampled": validation.sampled,
            "warnings": len(validation.warnings),
            "results": dg.MetadataValue.md(validation.as_markdown()),
        },
        description=None
        if not failures
        else "Failed: " + ", ".join(f"{o.expectation}({o.column})" for o in failures),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_ingestion_asset(source) for source in SOURCES.values()])

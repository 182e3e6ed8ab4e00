"""great-expectations suites for landed batches, derived from the landing contract.

The loader already quarantines rows that break a rule, so these suites are the
independent second line: they check what actually reached ``raw.*`` (a loader bug
or a contract change shows up here) and they flag drift the loader lets through on
purpose, such as unknown channel values.

GX's SQL execution engine does not support DuckDB, so batches are validated as
pandas frames. A batch larger than ``max_rows`` (a first backfill of a year) is
validated on a deterministic reservoir sample, and the result says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from orchestration.ingestion.contract import EXPECTED_VALUES, SOURCES

# Share of rows that may carry an unexpected enum value before the (non-blocking) expectation
# fails: a new channel appearing is worth a look, not a stopped pipeline.
ENUM_MOSTLY = 0.99


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str
    success: bool
    blocking: bool
    unexpected_count: int | None
    unexpected_percent: float | None


@dataclass
class ValidationSummary:
    source: str
    rows_validated: int
    rows_in_batch: int
    sampled: bool
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.blocking and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.blocking and not o.success]

    @property
    def success(self) -> bool:
        return not self.blocking_failures

    def as_markdown(self) -> str:
        lines = [
            "| expectation | column | result | unexpected | blocking |",
            "|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            unexpected = (
                ""
                if o.unexpected_count is None
                else f"{o.unexpected_count} ({o.unexpected_percent or 0:.2f}%)"
            )
            result = "pass" if o.success else "FAIL"
            lines.append(
                f"| {o.expectation} | {o.column} | {result} | {unexpected} | {'yes' if o.blocking else 'no'} |"
            )
        return "\n".join(lines)


def _expectations(source_name: str, columns: set[str]) -> list[tuple[Any, str, bool]]:
    """(expectation, column label, blocking) for one source and the columns present."""
    import great_expectations as gx

    source = SOURCES[source_name]
    items: list[tuple[Any, str, bool]] = []
    for name in source.required:
        items.append((gx.expectations.ExpectColumnValuesToNotBeNull(column=name), name, True))
    key = [k for k in source.key if k in columns]
    if len(key) == len(source.key):
        items.append(
            (
                gx.expectations.ExpectCompoundColumnsToBeUnique(
                    column_list=[*key, "_partition_date"]
                ),
                "+".join(key),
                True,
            )
        )
    for column in source.columns:
        if column.name not in columns:
            continue
        if column.type == "email":
            items.append(
                (
                    gx.expectations.ExpectColumnValuesToMatchRegex(
                        column=column.name, regex=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
                    ),
                    column.name,
                    True,
                )
            )
        if column.name in ("quantity",) and source_name == "online_order_lines":
            items.append(
                (
                    gx.expectations.ExpectColumnValuesToBeBetween(column=column.name, min_value=1),
                    column.name,
                    False,
                )
            )
        if column.name in ("order_total", "price", "unit_price") and source_name != "pos_lines":
            items.append(
                (
                    gx.expectations.ExpectColumnValuesToBeBetween(column=column.name, min_value=0),
                    column.name,
                    False,
                )
            )
    for (name, column), values in EXPECTED_VALUES.items():
        if name == source_name and column in columns:
            items.append(
                (
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column=column, value_set=list(values), mostly=ENUM_MOSTLY
                    ),
                    column,
                    False,
                )
            )
    return items


def _identity(expectation_type: str, kwargs: dict[str, Any]) -> tuple[str, str]:
    return expectation_type, str(kwargs.get("column") or kwargs.get("column_list"))


def validate_batch(
    source_name: str, frame: pd.DataFrame, rows_in_batch: int | None = None
) -> ValidationSummary:
    """Run the source's suite on ``frame`` (the landed rows, or a sample of them)."""
    import great_expectations as gx

    # GX logs a progress bar and info lines per metric; in asset logs that is noise.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    summary = ValidationSummary(
        source=source_name,
        rows_validated=len(frame),
        rows_in_batch=len(frame) if rows_in_batch is None else rows_in_batch,
        sampled=rows_in_batch is not None and rows_in_batch > len(frame),
    )
    items = _expectations(source_name, set(frame.columns))
    if not items:
        return summary
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars go to stderr once per metric: noise in asset logs and the CLI.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas(f"landed_{source_name}")
        .add_dataframe_asset(source_name)
        .add_batch_definition_whole_dataframe("landed_batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{source_name}_landed"))
    for expectation, _, _ in items:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{source_name}_landed", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    by_identity = {
        _identity(e.expectation_type, e.configuration.kwargs): (label, blocking)
        for e, label, blocking in items
    }
    for outcome in result.results:
        config = outcome.expectation_config
        label, blocking = by_identity.get(
            _identity(config.type, config.kwargs), (config.kwargs.get("column", ""), True)
        )
        summary.outcomes.append(
            ExpectationOutcome(
                expectation=outcome.expectation_config.type,
                column=label,
                success=bool(outcome.success),
                blocking=blocking,
                unexpected_count=outcome.result.get("unexpected_count"),
                unexpected_percent=outcome.result.get("unexpected_percent"),
            )
        )
    return summary

"""Identity resolution helpers with no Dagster in them: quality metrics and the Splink wrapper.

The Dagster assets in ``orchestration/defs/identity`` only fetch inputs, call these and report.
"""

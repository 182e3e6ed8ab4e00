"""Partition definitions shared by ingestion and (later) the incremental dbt models."""

import dagster as dg

# One partition per landing date folder. The start is early enough for a decade of
# history; end_offset=1 makes today's partition exist so intra-day drops can be loaded
# (the trigger sensors depend on that).
daily_partitions = dg.DailyPartitionsDefinition(
    start_date="2015-01-01", end_offset=1, timezone="UTC"
)

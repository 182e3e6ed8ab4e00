"""Runs that must not interleave on the warehouse, and the order they start in.

The ``duckdb`` pool (limit 1, op granularity) lets one writing step run at a time, but the steps
of different runs still take turns: a campaign launched while `nightly_build` runs could build
its audience between the nightly's customer view and its churn scores (today's customers with
yesterday's scores), and an ingestion run landing between two nightly steps changes the raw
tables under the staging views halfway through a build. Runs carrying the exclusive tag are
dequeued one at a time by the run queue (``concurrency.runs.tag_concurrency_limits`` in
``orchestration/dagster.yaml``), so each sees a warehouse no other such run is changing.

Among queued runs the queue starts the highest ``dagster/priority`` first, then the oldest:
loads before the nightly build (it should see every file that has landed), the nightly build
before campaigns and trigger refreshes (they read what it builds). A retry inherits its run's
tags, so after a nightly build crashed, its retry starts before the campaigns queued behind it
rather than leaving them a half-rebuilt warehouse.
"""

WAREHOUSE_TAG = "cdp/warehouse"
EXCLUSIVE = "exclusive"
PRIORITY_TAG = "dagster/priority"

# On every job or run request that rebuilds or reads a consistent state of the warehouse:
# nightly_build, refresh_triggers, each campaign's job, and ingestion from the landing sensor.
# Not on provider-event ingestion: it only appends events and suppressions, which a send
# should see as soon as they arrive.
EXCLUSIVE_RUN_TAGS = {WAREHOUSE_TAG: EXCLUSIVE}
LOAD_RUN_TAGS = {**EXCLUSIVE_RUN_TAGS, PRIORITY_TAG: "2"}
BUILD_RUN_TAGS = {**EXCLUSIVE_RUN_TAGS, PRIORITY_TAG: "1"}

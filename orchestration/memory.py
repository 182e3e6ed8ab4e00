"""Memory a run's process gives back between steps.

A run executes its steps one after another in one process (the in-process executor), and dbt
steps start a dbt process beside it: whatever a Python step leaves resident adds to the next
dbt step's peak. Arrow's allocator (mimalloc) keeps the memory it freed for reuse, so a step
that moved large Arrow or DuckDB results through Python leaves hundreds of MB behind unless it
is handed back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyarrow as pa


@contextlib.contextmanager
def arrow_memory_returned() -> Iterator[None]:
    """Hands Arrow's freed memory back to the system when the block ends (also on error).
    Measured at 1M customers: after a recommendations refit the run process held 1,036 MB,
    531 MB once returned; after the Splink step 620 MB, then 445 MB."""
    try:
        yield
    finally:
        pa.default_memory_pool().release_unused()

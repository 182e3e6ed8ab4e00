"""`arrow_memory_returned` hands the memory Arrow freed back to the system when an ML or Splink
step ends, so the run's process is small again before the next dbt step starts beside it."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from orchestration.memory import arrow_memory_returned

MB = 2**20


def _resident_mb() -> float:
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def _allocate_and_free(megabytes: int) -> None:
    """Many mid-sized Arrow buffers (80 KB each), as a step's intermediate results are."""
    base = pa.array(np.arange(10_000, dtype=np.int64))
    arrays = [pc.add(base, i) for i in range(megabytes * MB // base.nbytes)]
    assert pa.total_allocated_bytes() >= megabytes * MB * 0.9  # Arrow's pool holds them
    del arrays


def test_freed_arrow_memory_is_kept_by_the_allocator_and_returned_when_the_block_ends() -> None:
    pa.default_memory_pool().release_unused()
    before = _resident_mb()
    # Earlier tests in this worker process may hold Arrow buffers of their own.
    allocated_before = pa.total_allocated_bytes()

    with arrow_memory_returned():
        _allocate_and_free(300)
        # Freed, yet still resident: what a step left behind before this helper.
        assert pa.total_allocated_bytes() - allocated_before < 10 * MB
        assert _resident_mb() - before > 200

    assert _resident_mb() - before < 100


def test_the_memory_is_returned_when_the_step_fails_too() -> None:
    pa.default_memory_pool().release_unused()
    before = _resident_mb()

    with pytest.raises(RuntimeError), arrow_memory_returned():
        _allocate_and_free(300)
        raise RuntimeError("the step failed")

    assert _resident_mb() - before < 100

"""Keeping the run queue moving: runs whose process died are marked failed."""

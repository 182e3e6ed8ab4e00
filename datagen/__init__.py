"""Synthetic omni-channel retail demo data (landing files + ground truth)."""

from .generator import GENERATOR_VERSION, SOURCES, GenerationSummary, generate

__all__ = ["GENERATOR_VERSION", "SOURCES", "GenerationSummary", "generate"]

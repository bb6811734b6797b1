"""Where the shipped InDI models live (no torch import: the window asks this while it is built)."""

from __future__ import annotations

from pathlib import Path

from restorelab.indi.degrade import DEGRADATIONS

__all__ = ["model_path", "available"]


def model_path(degradation: str) -> Path:
    """The shipped weights for ``degradation``: ``resources/models/indi_<degradation>.safetensors``."""
    from restorelab.resources import models_dir

    if degradation not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {degradation!r}; expected one of {', '.join(DEGRADATIONS)}")
    return models_dir() / f"indi_{degradation}.safetensors"


def available() -> list[str]:
    """The degradations with a shipped model."""
    return [d for d in DEGRADATIONS if model_path(d).is_file()]

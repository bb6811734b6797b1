"""Locate the shipped resources (sample images, model weights).

Order: ``$RESTORELAB_RESOURCES``; a frozen (PyInstaller) bundle's ``resources``; the
``resources/`` folder beside the package in a source checkout or editable install.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["resources_dir", "samples_dir", "models_dir", "sample_path"]


def resources_dir() -> Path:
    env = os.environ.get("RESTORELAB_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def models_dir() -> Path:
    return resources_dir() / "models"


def sample_path(name: str = "default") -> Path:
    """Path of a built-in sample image; ``default`` is the one the app opens first."""
    d = samples_dir()
    if name == "default":
        name = "astronaut_noisy.png"
    return d / name

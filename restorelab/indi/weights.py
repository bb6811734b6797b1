"""InDI weights: safetensors files with the network configuration and the degradation in the header.

The file format is that of the project's denoisers (:mod:`restorelab.models.weights`:
float32 tensors, nothing pickled, every tensor checked by name, shape, dtype and
finiteness), with ``format = restorelab-indi-1`` and the InDI fields ``degradation`` (the
one the network was trained to undo) and ``eps`` (the noise level ε of the path
x_t = (1 − t) x + t y + t ε η). A denoiser file, a file for another degradation, a
truncated or altered file all fail with a ``ValueError`` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from restorelab.indi.degrade import DEGRADATIONS
from restorelab.indi.net import ARCH, TIME_FEATURES, IndiNet, build_indi
from restorelab.models.weights import read_checked_state, save_model

__all__ = ["FORMAT", "save_indi", "read_indi_metadata", "load_indi"]

FORMAT = "restorelab-indi-1"


def save_indi(
    path: str | os.PathLike, model: IndiNet, degradation: str, eps: float, meta: dict[str, Any] | None = None
) -> Path:
    """Write the network (unfolded, float32) with its degradation and ε, atomically."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {degradation!r}; expected one of {', '.join(DEGRADATIONS)}")
    md = {**(meta or {}), "format": FORMAT, "degradation": degradation, "eps": repr(float(eps))}
    return save_model(path, model, md)


def read_indi_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header of an InDI weights file (``ValueError`` for anything else)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"InDI model file not found: {p}")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            md = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{p}: not a readable safetensors file ({e})") from None
    if md.get("format") != FORMAT:
        raise ValueError(f"{p}: not an InDI model (format {md.get('format')!r}, expected {FORMAT!r})")
    return md


def load_indi(
    path: str | os.PathLike, device: Any = "cpu", degradation: str | None = None
) -> tuple[IndiNet, dict[str, str]]:
    """Load an InDI network in eval mode, gradients off, with its header.

    ``degradation``, when given, must be the one the file was trained for.
    """
    p = Path(path)
    md = read_indi_metadata(p)
    try:
        arch, deg = md["arch"], md["degradation"]
        channels, depth, width = int(md["channels"]), int(md["depth"]), int(md["width"])
        tf, eps = int(md["time_features"]), float(md["eps"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{p}: missing or bad InDI configuration in the header ({e})") from None
    if arch != ARCH or tf != TIME_FEATURES:
        raise ValueError(f"{p}: architecture {arch!r} with {tf} time features; this restorelab reads "
                         f"{ARCH!r} with {TIME_FEATURES}")
    if deg not in DEGRADATIONS:
        raise ValueError(f"{p}: unknown degradation {deg!r}")
    if degradation is not None and deg != degradation:
        raise ValueError(f"{p}: this model restores {deg!r}, not {degradation!r}")
    if not (0.0 <= eps < 1.0):
        raise ValueError(f"{p}: eps must be in [0, 1), got {eps}")
    try:
        model = build_indi(channels, depth, width)
    except ValueError as e:
        raise ValueError(f"{p}: bad configuration: {e}") from None
    what = f"an InDI UNet (depth {depth}, width {width}, {channels} ch)"
    model.load_state_dict(read_checked_state(p, model.state_dict(), what))
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model.to(torch.device(device) if isinstance(device, str) else device), md

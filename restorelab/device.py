"""Device selection: ``auto`` picks CUDA when present, else CPU."""

from __future__ import annotations

from typing import Any

__all__ = ["resolve_device", "device_name", "cuda_available"]


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: Any = "auto") -> Any:
    """Return a ``torch.device`` for ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a device).

    Asking for CUDA where none is present raises ``RuntimeError`` with a clear message.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    name = str(device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but no CUDA device is available; use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; expected auto, cpu or cuda")


def device_name(device: Any = "auto") -> str:
    """Human-readable device name (GPU model or 'CPU')."""
    import torch

    d = resolve_device(device)
    if d.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(d)}"
    return "CPU"

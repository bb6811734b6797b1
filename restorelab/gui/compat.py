"""Optional parts of the core: the window degrades gracefully while one is missing.

``core("restorelab.edit")`` returns the module or ``None``; ``why(name)`` gives the reason
(shown as the tooltip of the disabled action).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

_reasons: dict[str, str] = {}


def core(name: str) -> ModuleType | None:
    """Import ``name`` or return ``None`` (the reason is kept for :func:`why`)."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - any import failure makes the feature unavailable
        _reasons[name] = f"{type(e).__name__}: {e}"
        return None


def attr(module: str, name: str) -> Any | None:
    """``module.name`` or ``None`` when the module or the attribute is missing."""
    m = core(module)
    if m is None:
        return None
    if not hasattr(m, name):
        _reasons[f"{module}.{name}"] = f"{module} has no {name} yet"
        return None
    return getattr(m, name)


def why(name: str) -> str:
    """Why ``name`` is unavailable (for a tooltip)."""
    return "Unavailable: " + _reasons.get(name, f"{name} is not installed in this build")


def denoiser_names() -> list[str]:
    """Registered denoisers (empty while none is installed)."""
    m = core("restorelab.denoise")
    if m is None:
        return []
    try:
        return list(m.names())
    except Exception as e:  # noqa: BLE001
        _reasons["restorelab.denoise"] = str(e)
        return []

"""Denoisers: one registry, one interface (:class:`~restorelab.denoise.base.Denoiser`).

>>> from restorelab import denoise
>>> d = denoise.get("tv")                  # doctest: +SKIP
>>> x_hat = d(y, sigma=25 / 255)           # doctest: +SKIP

Each family lives in its own module and registers its classes with :func:`register`.
"""

from __future__ import annotations

import importlib
from typing import Any

from restorelab.denoise.base import Denoiser

__all__ = ["Denoiser", "register", "get", "get_class", "names", "available"]

#: modules imported (lazily) to fill the registry; each registers its denoisers
_MODULES = (
    "restorelab.denoise.heat",
    "restorelab.denoise.tikhonov",
    "restorelab.denoise.tv",
    "restorelab.denoise.perona_malik",
    "restorelab.denoise.wavelet",
    "restorelab.denoise.sparse",
    "restorelab.denoise.nlm",
    "restorelab.denoise.bfcnn",
)

_REGISTRY: dict[str, type[Denoiser]] = {}
_loaded = False


def register(cls: type[Denoiser]) -> type[Denoiser]:
    """Class decorator adding a denoiser to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a family not written yet
            if e.name != mod:
                raise
    _loaded = True


def names() -> list[str]:
    """Registered denoiser names, in registration order."""
    _load()
    return list(_REGISTRY)


def available() -> list[type[Denoiser]]:
    """Registered denoiser classes."""
    _load()
    return list(_REGISTRY.values())


def get_class(name: str) -> type[Denoiser]:
    """The class registered as ``name`` (KeyError with the known names otherwise)."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown denoiser {name!r}; available: {', '.join(_REGISTRY)}") from None


def get(name: str, *, device: Any = "auto", **params: Any) -> Denoiser:
    """A denoiser instance: ``get(name, **params)(y, sigma) -> x̂``."""
    return get_class(name)(device=device, **params)

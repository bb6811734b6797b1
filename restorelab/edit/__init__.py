"""Gradient-domain (Poisson) image editing.

Pérez, Gangnet & Blake, "Poisson Image Editing", SIGGRAPH 2003; Di Martino, Facciolo &
Meinhardt-Llopis, "Poisson Image Editing", IPOL 6 (2016) 300–325. Find f minimising
∫_Ω |∇f − v|² with f = f* on ∂Ω, i.e. Δf = div v in Ω, for a guidance field v:

* :func:`seamless_clone` / :func:`prepare` → :class:`CloneSession` (import, mixed, average,
  paste, replace) at an explicit offset;
* :func:`texture_flatten`, :func:`illumination_change`, :func:`color_change`,
  :func:`contrast_enhance`, :func:`seamless_tile`;
* :data:`OPERATIONS`: the parameter declarations of each edit (CLI flags and GUI panel);
  :func:`apply` / :func:`job` run an edit by name.

Images are float32 (H, W) or (H, W, C) in [0, 1]; uint8 / uint16 / float and RGBA inputs are
accepted (:func:`to_float`, :func:`from_float`); results are new float32 arrays.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from restorelab.edit._image import from_float, to_float
from restorelab.edit.clone import CloneSession, prepare, seamless_clone
from restorelab.edit.edits import (
    color_change,
    contrast_enhance,
    illumination_change,
    seamless_tile,
    texture_flatten,
)
from restorelab.edit.guidance import CLONE_MODES
from restorelab.edit.solvers import SOLVERS, MaskedPoisson, solve_neumann_dct, solve_periodic_fft
from restorelab.jobs import Progress
from restorelab.params import Param, resolve_params

__all__ = [
    "seamless_clone",
    "prepare",
    "CloneSession",
    "texture_flatten",
    "illumination_change",
    "color_change",
    "contrast_enhance",
    "seamless_tile",
    "OPERATIONS",
    "CLONE_MODES",
    "SOLVERS",
    "MaskedPoisson",
    "solve_neumann_dct",
    "solve_periodic_fft",
    "to_float",
    "from_float",
    "apply",
    "job",
    "needs_mask",
]

OPERATIONS: dict[str, tuple[Param, ...]] = {
    "clone": (
        Param("mode", str, "import", label="Guidance field", choices=CLONE_MODES,
              help="guidance: import = source gradients, mixed = the stronger of source and destination "
                   "gradients, average, paste = plain copy, replace = IPOL name of import"),
        Param("solver", str, "auto", label="Linear solver", choices=SOLVERS,
              help="linear solver (all exact): auto, capacitance (FFT + boundary matrix, reused "
                   "while dragging), direct (sparse LU), cg (DST-preconditioned CG), amg (multigrid)",
              group="advanced"),
    ),
    "flatten": (
        Param("low_threshold", float, 30.0, label="Canny low threshold", lo=0.0, hi=1000.0, unit="/255",
              help="Canny low hysteresis threshold (8-bit gradient scale)"),
        Param("high_threshold", float, 45.0, label="Canny high threshold", lo=0.0, hi=1000.0, unit="/255",
              help="Canny high hysteresis threshold (8-bit gradient scale)"),
        Param("kernel_size", int, 3, label="Sobel aperture",
              lo=3, hi=7, choices=(), help="Sobel aperture of Canny: 3, 5 or 7"),
    ),
    "illumination": (
        Param("alpha", float, 0.2, label="Compression strength α", lo=1e-3, hi=10.0, log=True,
              help="a = alpha × mean gradient norm in the selection (Fattal-style compression)"),
        Param("beta", float, 0.2, label="Compression exponent β", lo=-1.0, hi=1.0,
              help="exponent: > 0 compresses strong gradients (evens lighting), < 0 expands them"),
    ),
    "color": (
        Param("red_mul", float, 1.5, label="Red gradient gain",
              lo=0.0, hi=4.0, help="red gradient multiplier"),
        Param("green_mul", float, 0.5, label="Green gradient gain",
              lo=0.0, hi=4.0, help="green gradient multiplier"),
        Param("blue_mul", float, 0.5, label="Blue gradient gain",
              lo=0.0, hi=4.0, help="blue gradient multiplier"),
    ),
    "contrast": (
        Param("factor", float, 1.5, label="Contrast gain",
              lo=0.0, hi=5.0, help="gradient scale: > 1 more contrast, < 1 less"),
    ),
    "tile": (),
}

_FUNCS = {
    "flatten": texture_flatten,
    "illumination": illumination_change,
    "color": color_change,
    "contrast": contrast_enhance,
}


def needs_mask(name: str) -> bool:
    """Whether the edit ``name`` requires a mask (clone) or cannot take one (tile)."""
    return name == "clone"


def apply(name: str, img: Any, mask: Any = None, **params: Any) -> np.ndarray:
    """Run the whole-image/masked edit ``name`` (a key of :data:`OPERATIONS` except ``clone``)
    with checked parameters (defaults from the declarations)."""
    if name not in OPERATIONS or name == "clone":
        names = ", ".join(k for k in OPERATIONS if k != "clone")
        raise ValueError(f"unknown edit {name!r}; use one of {names}")
    p = resolve_params(OPERATIONS[name], params)
    if name == "tile":
        if mask is not None:
            raise ValueError("seamless tiling works on the whole image; it takes no mask")
        return seamless_tile(img)
    return _FUNCS[name](img, mask, **p)


def job(name: str, img: Any, mask: Any = None, **params: Any) -> Generator[Progress, None, np.ndarray]:
    """:func:`apply` as a job (restorelab.jobs): one step, cancellable before it starts."""
    yield Progress(0, 1, message=f"poisson {name}")
    out = apply(name, img, mask, **params)
    yield Progress(1, 1, message=f"poisson {name}")
    return out

"""The ideal-denoiser report: how far a denoiser is from the properties of an MMSE denoiser.

An MMSE denoiser f(y) = E[x | y] of Gaussian noise satisfies (Milanfar & Delbracio,
"Denoising: a powerful building block for imaging, inverse problems and machine learning",
2024; Kadkhodaie & Simoncelli 2021, Miyasawa 1961):

* **identity**: f(y, σ → 0) = y (no noise, nothing to remove);
* **conservation**: J = I + σ²∇² log p(y) is symmetric (f is the gradient of a potential);
* **shrinkage**: the eigenvalues of J lie in [0, 1] (each direction is kept or attenuated);
* **contraction**: ‖J‖₂ ≤ 1.

A bias-free network is also positively **homogeneous**, f(αy) = α f(y), hence by Euler's
identity f(y) = J(y) y (Mohan et al. 2020): its output is an adaptive linear filter of y. The
report measures each property on one crop at one σ and lists the ones that fail as flags.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from restorelab.analysis.jacobian import Jacobian, _as_crop, evaluator, jacobian_job, spectrum
from restorelab.denoise.base import Denoiser, check_sigma
from restorelab.jobs import Progress

__all__ = ["IdealReport", "ideal_report_job", "report_table", "TOLERANCES", "IDENTITY_SIGMA", "ALPHAS"]

#: "σ → 0" of the identity check (0.26/255 on the [0, 1] scale)
IDENTITY_SIGMA = 1e-3
#: scalings of the homogeneity check
ALPHAS = (0.5, 2.0)
#: a property is flagged when its measure exceeds this
TOLERANCES = {
    "identity": 1e-2,
    "conservation": 5e-2,
    "homogeneity": 1e-3,
    "euler": 1e-3,
    "shrinkage": 1e-3,
    "contraction": 1e-3,
}


@dataclass
class IdealReport:
    """Measures of one denoiser at one σ on one crop (relative errors unless said otherwise).

    ``identity`` ‖f(x, σ→0) − x‖/‖x‖ on the clean crop x; ``conservation`` ‖J − Jᵀ‖_F/‖J‖_F;
    ``homogeneity`` max over α of ‖f(αy) − αf(y)‖/‖αf(y)‖; ``eig_min``/``eig_max`` the extreme
    eigenvalues of (J + Jᵀ)/2 and ``shrinkage_ok`` whether they lie in [0, 1] (± tolerance);
    ``spectral_norm`` ‖J‖₂; ``euler`` ‖f(y) − J y‖/‖f(y)‖ (0 for bias-free and linear
    maps); ``trace`` tr J and ``n`` the crop's size; ``flags`` the failed properties.
    """

    denoiser: str
    sigma: float
    shape: tuple[int, ...]
    method: str
    detail: str
    identity: float
    conservation: float
    homogeneity: float
    eig_min: float
    eig_max: float
    shrinkage_ok: bool
    spectral_norm: float
    euler: float
    trace: float
    n: int
    seconds: float
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    nb = float(np.linalg.norm(b))
    d = float(np.linalg.norm(a - b))
    return d / nb if nb > 0 else (0.0 if d == 0 else math.inf)


def ideal_report_job(
    den: Denoiser,
    clean: Any,
    sigma: float,
    *,
    noisy: Any = None,
    seed: int = 0,
    jacobian: Jacobian | None = None,
    **jac_kw: Any,
) -> Generator[Progress, None, IdealReport]:
    """Measure the ideal-denoiser properties of ``den`` at σ on a crop.

    ``clean`` is the clean crop x (used by the identity check); J and the other checks are
    evaluated at ``noisy`` if given, else at y = x + σz with z seeded by ``seed``. A job: the
    Jacobian's progress events, then one per check. A ``jacobian`` already computed at the
    noisy crop (:func:`~restorelab.analysis.jacobian.jacobian_job`) is used as it is.
    """
    s = check_sigma(sigma)
    x = _as_crop(clean)
    if jacobian is not None:
        y = jacobian.y
    elif noisy is not None:
        y = _as_crop(noisy)
    else:
        y = x + s * np.random.default_rng(seed).standard_normal(x.shape)
    if y.shape != x.shape:
        raise ValueError(f"noisy crop shape {y.shape} differs from the clean crop's {x.shape}")
    jac = jacobian if jacobian is not None else (yield from jacobian_job(den, y, s, **jac_kw))
    c = x.shape[2]
    yield Progress(0, 3, message="identity and homogeneity")
    f0 = evaluator(den, IDENTITY_SIGMA, c)
    identity = _rel(f0(x[None])[0], x)
    f = evaluator(den, s, c)
    outs = f(np.stack([y * a for a in ALPHAS]))
    homog = max(_rel(o, a * jac.fy) for o, a in zip(outs, ALPHAS, strict=True))
    yield Progress(1, 3, message="spectrum")
    sp = spectrum(jac)
    J = jac.matrix
    yield Progress(2, 3, message="spectral norm")
    snorm = float(np.linalg.norm(J, 2))
    euler = _rel(J @ y.reshape(-1), jac.fy.reshape(-1))
    lo, hi = float(sp.eigenvalues[-1]), float(sp.eigenvalues[0])
    tol = TOLERANCES
    shrink_ok = lo >= -tol["shrinkage"] and hi <= 1 + tol["shrinkage"]
    flags = []
    if identity > tol["identity"]:
        flags.append("identity")
    if sp.asymmetry > tol["conservation"]:
        flags.append("conservation")
    if homog > tol["homogeneity"]:
        flags.append("homogeneity")
    if euler > tol["euler"]:
        flags.append("f(y)≠Jy")
    if not shrink_ok:
        flags.append("shrinkage")
    if snorm > 1 + tol["contraction"]:
        flags.append("contraction")
    yield Progress(3, 3, message="done")
    return IdealReport(
        den.name,
        s,
        tuple(int(v) for v in x.shape),
        jac.method,
        jac.detail,
        identity,
        sp.asymmetry,
        homog,
        lo,
        hi,
        shrink_ok,
        snorm,
        euler,
        jac.trace,
        jac.n,
        jac.seconds,
        flags,
    )


def report_table(reports: Sequence[IdealReport]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (formatted) of a Markdown table of reports, one row per denoiser."""
    header = [
        "method",
        "Jacobian",
        "identity",
        "‖J−Jᵀ‖/‖J‖",
        "homogeneity",
        "‖f(y)−Jy‖/‖f(y)‖",
        "eig range",
        "‖J‖₂",
        "tr J / n",
        "flags",
    ]
    rows = []
    for r in reports:
        rows.append(
            [
                r.denoiser,
                r.method,
                f"{r.identity:.1e}",
                f"{r.conservation:.1e}",
                f"{r.homogeneity:.1e}",
                f"{r.euler:.1e}",
                f"[{r.eig_min:.3f}, {r.eig_max:.3f}]",
                f"{r.spectral_norm:.3f}",
                f"{r.trace:.1f} / {r.n}",
                ", ".join(r.flags) or "—",
            ]
        )
    return header, rows

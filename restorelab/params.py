"""One declaration per parameter.

Every method (denoiser, Poisson edit, sampler) declares its parameters once as a tuple of
:class:`Param`. The CLI builds its ``--param k=v`` parsing and ``restorelab methods``
listing from it, the GUI builds one widget per declaration (slider, log slider, σ slider
shown ×255, checkbox, combo box), each titled by the declaration's ``label`` (human words)
and ``unit``, and every value typed or restored is checked by :meth:`Param.validate`.

The noise level σ of every denoiser has one declared range, [0, :data:`SIGMA_MAX`] on the
[0, 1] intensity scale, checked by :func:`check_sigma`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Param", "ParamError", "resolve_params", "format_params", "check_sigma", "SIGMA_MAX"]

#: largest noise level σ a denoiser accepts, on the [0, 1] intensity scale (255 on the 8-bit scale):
#: Gaussian noise whose standard deviation is the whole intensity range leaves no signal to estimate
SIGMA_MAX = 1.0


class ParamError(ValueError):
    """A parameter value is unknown, of the wrong type or out of its declared range."""


def _fmt(v: float | None, inf: str) -> str:
    return inf if v is None else f"{v:g}"


def check_sigma(sigma: Any) -> float:
    """σ as a float in [0, :data:`SIGMA_MAX`] (``ValueError`` naming the range otherwise).

    σ is the standard deviation of the noise on the [0, 1] intensity scale; the command line
    and the GUI show it ×255.
    """
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a number, got {sigma!r}") from None
    if not (0.0 <= s <= SIGMA_MAX):  # also refuses NaN
        on255 = f" ({255 * s:g} on the 0–255 scale)" if math.isfinite(s) else ""
        raise ValueError(
            f"sigma = {s:g}{on255} is out of range [0, {SIGMA_MAX:g}] (noise level σ on the [0, 1] "
            f"intensity scale, at most {255 * SIGMA_MAX:g} on the 0–255 scale)"
        )
    return s


@dataclass(frozen=True)
class Param:
    """Declaration of one parameter.

    ``kind`` is one of ``float``, ``int``, ``bool``, ``str`` (with ``choices``).
    ``default`` is a value or a callable ``default(sigma) -> value`` (σ on the [0, 1]
    scale), so that σ-dependent defaults give good results without tuning.
    ``sigma_like`` marks values on the [0, 1] intensity scale that users see ×255.
    ``label`` is what the GUI and ``restorelab methods`` show (human words, e.g.
    "Regularization weight λ"; :attr:`display_label` falls back to ``name``), ``unit`` the
    unit of the value (``px``, ``px²``; empty when dimensionless).
    """

    name: str
    kind: type
    default: Any
    lo: float | None = None
    hi: float | None = None
    log: bool = False
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    sigma_like: bool = False
    group: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (float, int, bool, str):
            raise TypeError(f"Param {self.name}: unsupported kind {self.kind!r}")
        if self.log and self.lo is not None and self.lo <= 0:
            raise ValueError(f"Param {self.name}: a log-scale range needs lo > 0")

    @property
    def display_label(self) -> str:
        """The label shown to users (the code name when no label is declared)."""
        return self.label or self.name

    @property
    def depends_on_sigma(self) -> bool:
        return callable(self.default)

    def default_for(self, sigma: float | None = None) -> Any:
        """The default value, evaluated at ``sigma`` when it is a function of σ."""
        if callable(self.default):
            if sigma is None:
                sigma = 25 / 255
            return self.coerce(self.default(float(sigma)), clamp=True)
        return self.default

    def coerce(self, value: Any, *, clamp: bool = False) -> Any:
        """Convert ``value`` to the declared kind and check the range (``ParamError``)."""
        try:
            if self.kind is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low in ("1", "true", "yes", "on"):
                        return True
                    if low in ("0", "false", "no", "off"):
                        return False
                    raise ValueError(value)
                return bool(value)
            if self.kind is int:
                if isinstance(value, float) and not value.is_integer() and not clamp:
                    raise ValueError(value)
                v: Any = int(round(float(value)))
            elif self.kind is float:
                v = float(value)
                if not math.isfinite(v):
                    raise ValueError(value)
            else:
                v = str(value)
        except (TypeError, ValueError):
            raise ParamError(
                f"parameter '{self.name}' expects {self.kind.__name__}, got {value!r}"
            ) from None
        if self.kind is str:
            if self.choices and v not in self.choices:
                raise ParamError(
                    f"parameter '{self.name}' must be one of {', '.join(self.choices)}; got {v!r}"
                )
            return v
        if clamp:
            if self.lo is not None:
                v = max(v, self.kind(self.lo))
            if self.hi is not None:
                v = min(v, self.kind(self.hi))
            return v
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            what = f" ({self.label})" if self.label else ""
            rng = f"{'[' if self.lo is not None else '('}{_fmt(self.lo, '−∞')}, {_fmt(self.hi, '∞')}"
            rng += "]" if self.hi is not None else ")"
            raise ParamError(f"{self.name} = {v:g} is out of range {rng}{what}")
        return v

    def validate(self, value: Any) -> Any:
        """``value`` converted to the declared kind, or ``ParamError`` (a ``ValueError``) saying
        why, e.g. ``lam = 5000 is out of range [0.0001, 10] (Regularization weight λ)``."""
        return self.coerce(value)

    def parse(self, text: str) -> Any:
        """Parse a command-line string."""
        return self.coerce(text)

    def describe(self) -> str:
        """One line for ``restorelab methods``."""
        if callable(self.default):
            example = f", e.g. {self.default_for(25 / 255):.4g} at σ=25" if self.kind in (int, float) else ""
            d = "f(σ)" + example
        else:
            d = repr(self.default)
        rng = ""
        if self.choices:
            rng = " {" + "|".join(self.choices) + "}"
        elif self.lo is not None or self.hi is not None:
            rng = f" [{self.lo}, {self.hi}]" + (" log" if self.log else "")
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.label} — {self.help}" if self.label and self.help else (self.label or self.help)
        return f"{self.name} ({self.kind.__name__}{rng}{unit}, default {d}): {text}"


def resolve_params(
    params: Iterable[Param], values: Mapping[str, Any], sigma: float | None = None
) -> dict[str, Any]:
    """Full parameter dict: given ``values`` (checked) over σ-resolved defaults."""
    decl = {p.name: p for p in params}
    unknown = set(values) - set(decl)
    if unknown:
        raise ParamError(
            f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(decl) or 'none'}"
        )
    out = {}
    for name, p in decl.items():
        given = name in values and values[name] is not None
        out[name] = p.validate(values[name]) if given else p.default_for(sigma)
    return out


def format_params(params: Iterable[Param], indent: str = "    ") -> str:
    """Multi-line description of a parameter tuple."""
    return "\n".join(indent + p.describe() for p in params)

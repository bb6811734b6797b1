"""The window's capabilities, one module each; every feature sees only an AppContext."""

from __future__ import annotations

from restorelab.gui.context import AppContext
from restorelab.gui.features.analysis import AnalysisFeature
from restorelab.gui.features.base import Feature
from restorelab.gui.features.clone import CloneFeature
from restorelab.gui.features.denoise import DenoiseFeature
from restorelab.gui.features.indi import IndiFeature
from restorelab.gui.features.manifold import ManifoldFeature
from restorelab.gui.features.mask import MaskFeature
from restorelab.gui.features.multiscale import MultiscaleFeature
from restorelab.gui.features.poisson import PoissonFeature
from restorelab.gui.features.sampler import SamplerFeature

__all__ = ["Feature", "all_features"]

FEATURES: tuple[type[Feature], ...] = (
    MaskFeature,
    DenoiseFeature,
    CloneFeature,
    PoissonFeature,
    SamplerFeature,
    ManifoldFeature,
    MultiscaleFeature,
    IndiFeature,
    AnalysisFeature,
)


def all_features(ctx: AppContext) -> list[Feature]:
    """One instance of every feature, in menu order."""
    return [cls(ctx) for cls in FEATURES]

"""The denoiser as a prior: multiscale decomposition, measurement operators, the
coarse-to-fine samplers of Kadkhodaie & Simoncelli (2021), plug-and-play / RED and the
2-D manifold demonstration.

>>> from restorelab import prior                                          # doctest: +SKIP
>>> dec = prior.decompose(x, "tv", levels=4, sigma=0.1); dec.recompose([2, 1.5, 1, 1])
>>> op = prior.operators.make("sr", x.shape, factor=4)
>>> res = prior.run_job(prior.inverse_job("bfcnn", op, x, samples=4))    # res.mean, res.std
"""

from __future__ import annotations

from restorelab.jobs import run_job
from restorelab.prior import operators
from restorelab.prior.decompose import DECOMPOSE_PARAMS, Decomposition, decompose, decompose_job
from restorelab.prior.pnp import PNP_METHODS, PNP_PARAMS, PnPResult, pnp, pnp_job
from restorelab.prior.sampler import (
    INVERSE_PARAMS,
    SAMPLER_PARAMS,
    SampleResult,
    inverse,
    inverse_job,
    sample,
    sample_job,
    step_size,
)

__all__ = [
    "operators",
    "manifold",
    "run_job",
    "Decomposition",
    "decompose",
    "decompose_job",
    "DECOMPOSE_PARAMS",
    "SampleResult",
    "SAMPLER_PARAMS",
    "INVERSE_PARAMS",
    "sample_job",
    "inverse_job",
    "sample",
    "inverse",
    "step_size",
    "PnPResult",
    "PNP_PARAMS",
    "PNP_METHODS",
    "pnp_job",
    "pnp",
]


def __getattr__(name: str):  # lazy: the demo module is only needed by the GUI and its tests
    if name == "manifold":
        import importlib

        return importlib.import_module("restorelab.prior.manifold")
    raise AttributeError(name)

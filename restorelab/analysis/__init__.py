"""What a denoiser has learned: Jacobians, adaptive filters and bases, ideal-denoiser checks.

Qt-free; every long computation is a generator job (:mod:`restorelab.jobs`). See
``docs/analysis.md``. The generalization experiment lives in
:mod:`restorelab.analysis.generalization` (it imports the training code).
"""

from restorelab.analysis.ideal import IdealReport, ideal_report_job, report_table
from restorelab.analysis.jacobian import (
    BasisResult,
    Jacobian,
    Spectrum,
    TraceSweep,
    adaptive_filter,
    basis_job,
    crop_around,
    filter_kind,
    jacobian,
    jacobian_job,
    jacobian_method,
    spectrum,
    trace_sweep_job,
)

__all__ = [
    "BasisResult",
    "IdealReport",
    "Jacobian",
    "Spectrum",
    "TraceSweep",
    "adaptive_filter",
    "basis_job",
    "crop_around",
    "filter_kind",
    "ideal_report_job",
    "jacobian",
    "jacobian_job",
    "jacobian_method",
    "report_table",
    "spectrum",
    "trace_sweep_job",
]

"""What a denoiser has learned: Jacobians, adaptive filters and bases, ideal-denoiser checks.

Qt-free; every long computation is a generator job (:mod:`restorelab.jobs`).
"""

"""Test-only analytic denoisers (exact MMSE estimators of simple priors)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from restorelab.denoise.base import Denoiser


class GaussianPriorDenoiser(Denoiser):
    """Exact MMSE denoiser of the prior x ~ N(mu, s² I): x̂ = mu + s²/(s²+σ²) (y − mu). Non-blind."""

    name: ClassVar[str] = "test-gauss"
    torch_native: ClassVar[bool] = True

    def __init__(self, mu: float = 0.5, s: float = 0.1, **kw: Any) -> None:
        super().__init__(**kw)
        self.mu, self.s = mu, s
        self.calls = 0

    def _gain(self, sigma: Any, n: int) -> Any:
        sig = torch.as_tensor(sigma, dtype=torch.float32).flatten()
        sig = sig.expand(n) if sig.numel() == 1 else sig
        return (self.s**2 / (self.s**2 + sig**2)).view(-1, 1, 1, 1)

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        self.calls += 1
        return self.mu + self.s**2 / (self.s**2 + sigma**2) * (x - self.mu)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        self.calls += 1
        return self.mu + self._gain(sigma, y.shape[0]).to(y) * (y - self.mu)


class SmoothSubspaceDenoiser(Denoiser):
    """Blind projection onto smooth images (the lowest ``k``×``k`` DCT-like Fourier band, plus a mean).

    It is the MMSE denoiser (σ → 0 limit) of a flat prior on that subspace; its residual is
    −(I − P) y, so Algorithm 1/2 converge to the subspace.
    """

    name: ClassVar[str] = "test-smooth"
    torch_native: ClassVar[bool] = True

    def __init__(self, k: int = 3, **kw: Any) -> None:
        super().__init__(**kw)
        self.k = k
        self.calls = 0

    def _proj(self, y: torch.Tensor) -> torch.Tensor:
        X = torch.fft.rfft2(y, norm="ortho")
        h, w = y.shape[-2:]
        fy = torch.fft.fftfreq(h).abs() * h
        fx = torch.fft.rfftfreq(w) * w
        keep = ((fy[:, None] <= self.k) & (fx[None, :] <= self.k)).to(y.device)
        return torch.fft.irfft2(X * keep, s=(h, w), norm="ortho")

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        t = torch.from_numpy(np.moveaxis(x, 2, 0))[None]
        return np.moveaxis(self._proj(t)[0].numpy(), 0, 2)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        self.calls += 1
        return self._proj(y)


def smooth_image(h: int = 16, w: int = 16, c: int = 0) -> np.ndarray:
    """A smooth test image in (0, 1) inside the SmoothSubspace (k ≥ 1)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = 0.5 + 0.2 * np.cos(2 * math.pi * yy / h) + 0.15 * np.sin(2 * math.pi * xx / w)
    img = img.astype(np.float32)
    return img if not c else np.repeat(img[:, :, None], c, axis=2)

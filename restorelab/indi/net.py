"""The t-conditioned restoration network F_θ(x_t, t) of InDI (Delbracio & Milanfar, TMLR 2023).

It is the project's UNet (:class:`restorelab.models.nets.BFUNet`: average-pool down,
bilinear up, skip concatenation, two 3×3 conv + ReLU per block) with two changes. Its
convolutions get biases and lose the bias-free norm: a denoiser needs homogeneity
f(αy) = αf(y), a restoration step does not, and on a short CPU budget the biased,
unnormalised UNet learns the small per-t corrections far faster (on one JPEG crop, 300
Adam steps cut the N = 1 error by 44 % against 2 % for the bias-free version). And its
first convolution also reads a *time embedding*: ``TIME_FEATURES`` constant maps of Fourier
features of t, (t, sin 2^k π t, cos 2^k π t) for k = 0, 1, 2. A constant input map through
a convolution is a t-dependent offset of every feature, so one network serves every t
(the same role as the sinusoidal embedding of diffusion UNets, at no extra layers).

The output is a residual, F(x_t, t) = x_t + g(x_t, t), with the last convolution starting at
zero: at the start of training F is the identity (N = 1 returns the input), so a short
training run can only add corrections, and t → 0 leaves a nearly clean x_t nearly untouched.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from restorelab.models.nets import BFUNet, ConvBN, _init

__all__ = ["IndiNet", "TIME_FEATURES", "ARCH", "time_features", "build_indi"]

ARCH = "indi-unet"
TIME_FEATURES = 7
#: default (depth, width) of the shipped CPU-trained models
DEFAULT_DEPTH, DEFAULT_WIDTH = 3, 16


def time_features(t: torch.Tensor) -> torch.Tensor:
    """(N,) times → (N, TIME_FEATURES): t, sin(2^k π t), cos(2^k π t), k = 0, 1, 2."""
    t = t.reshape(-1, 1).float()
    feats = [t]
    for k in range(3):
        a = (2**k) * math.pi * t
        feats += [torch.sin(a), torch.cos(a)]
    return torch.cat(feats, dim=1)


class IndiNet(BFUNet):
    """F_θ(x_t, t) = x_t + UNet([x_t, φ(t)]), φ the time features broadcast over the image."""

    arch = ARCH

    def __init__(self, channels: int = 3, depth: int = DEFAULT_DEPTH, width: int = DEFAULT_WIDTH) -> None:
        super().__init__(channels=channels, depth=depth, width=width)
        self.inc = ConvBN(channels + TIME_FEATURES, width, norm=False)
        for m in self.modules():
            if isinstance(m, ConvBN):
                c = m.conv
                m.conv = nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1, bias=True)
                m.conv._scale_factor = getattr(c, "_scale_factor", 1.0)  # type: ignore[attr-defined]
                m.bn = None
        _init(self)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and m.bias is not None:
                    m.bias.zero_()
            self.out.conv.weight.zero_()  # F = identity at the start: training only ever adds corrections

    def config(self) -> dict[str, Any]:
        return {**super().config(), "time_features": TIME_FEATURES}

    @property
    def folded(self) -> bool:
        """Always False: without norms there is nothing to fold, the weights are saved as they are."""
        return False

    def forward(self, x: torch.Tensor, t: torch.Tensor | float = 1.0) -> torch.Tensor:  # type: ignore[override]
        """F(x_t, t) for x_t (N, C, H, W) and t a number or an (N,) tensor in [0, 1]."""
        n, _, h, w = x.shape
        tt = torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1)
        if tt.numel() == 1:
            tt = tt.expand(n)
        if tt.numel() != n:
            raise ValueError(f"t must be a number or hold one time per image ({n}), got {tt.numel()}")
        emb = time_features(tt).to(x.dtype)[:, :, None, None].expand(n, TIME_FEATURES, h, w)
        return x + super().forward(torch.cat([x, emb], dim=1))


def build_indi(channels: int = 3, depth: int | None = None, width: int | None = None) -> IndiNet:
    """A fresh InDI network (defaults: 3 scales, width 16)."""
    d = DEFAULT_DEPTH if depth is None else int(depth)
    w = DEFAULT_WIDTH if width is None else int(width)
    if d < 1 or w < 1:
        raise ValueError(f"depth and width must be >= 1, got depth {d}, width {w}")
    return IndiNet(channels=channels, depth=d, width=w)

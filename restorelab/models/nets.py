"""Bias-free denoising networks (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020).

Every layer is positively homogeneous: convolutions without bias, ReLU, average pooling,
bilinear upsampling, reflect padding and a batch norm that only *divides* by a running
standard deviation and multiplies by a learned gain (no mean subtraction, no shift).
In eval mode the whole map is therefore f(αy) = α f(y) for α > 0, and the predicted
residual f(y) ≈ y − x gives x̂ = y − f(y), whose residual estimates σ²∇log p(y)
(Kadkhodaie & Simoncelli 2021).

Two architectures:

- ``bfcnn``: the DnCNN-shaped BF-CNN (depth 3×3 conv layers, ``width`` channels).
- ``bfunet``: a bias-free UNet (``depth`` scales, avg-pool down, bilinear up, two
  conv-norm-ReLU per block), far fewer FLOPs per pixel for a larger receptive field.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.params import Param, resolve_params

__all__ = [
    "pad_to_multiple",
    "BFBatchNorm2d",
    "ConvBN",
    "BFCNN",
    "BFUNet",
    "build_model",
    "ARCHS",
    "DEFAULTS",
    "CONFIG_PARAMS",
    "MAX_PARAMETERS",
    "parameter_count",
    "check_config",
]

ARCHS = ("bfcnn", "bfunet")
#: default (depth, width) per architecture
DEFAULTS: dict[str, tuple[int, int]] = {"bfcnn": (20, 64), "bfunet": (3, 32)}

#: declared range of every configuration value, per architecture: a model file's header or a
#: training configuration outside them is refused before anything is allocated
CONFIG_PARAMS: dict[str, tuple[Param, ...]] = {
    "bfcnn": (
        Param("channels", int, 1, lo=1, hi=3, label="Image channels", help="1 (gray) or 3 (RGB)"),
        Param("depth", int, 20, lo=3, hi=256, label="Convolution layers"),
        Param("width", int, 64, lo=1, hi=1024, label="Channels per layer"),
    ),
    "bfunet": (
        Param("channels", int, 1, lo=1, hi=3, label="Image channels", help="1 (gray) or 3 (RGB)"),
        Param("depth", int, 3, lo=1, hi=8, label="Scales", help="UNet scales (widths w, 2w, 4w, ...)"),
        Param("width", int, 32, lo=1, hi=1024, label="Channels at the finest scale"),
    ),
}
#: largest network built (parameters and buffers): 50 M float32 values are 200 MB, some 70 times
#: the default BF-CNN; a header asking for more is refused before construction
MAX_PARAMETERS = 50_000_000


def parameter_count(arch: str, channels: int, depth: int, width: int) -> int:
    """Number of values in the state of the network (conv weights, BF batch-norm gains and
    running standard deviations), computed from the configuration without building it.

    BF-CNN: ``9cw + (d − 2)(9w² + 2w) + 9wc``. BF-UNet with widths ``w_l = w·2^l``: the
    input conv ``9c·w_0``, per encoder scale ``9 w_{l−1} w_l + 9 w_l² + 4 w_l`` (``w_{−1} =
    w_0``), per decoder scale ``9 (w_{l+1} + w_l) w_l + 9 w_l² + 4 w_l``, the output conv
    ``9 w_0 c``.
    """
    c, d, w = int(channels), int(depth), int(width)
    if arch == "bfcnn":
        return 9 * c * w + max(d - 2, 0) * (9 * w * w + 2 * w) + 9 * w * c
    ws = [w * 2**level for level in range(d)]
    n = 9 * c * ws[0] + 9 * ws[0] * c
    for level in range(d):
        cin = ws[0] if level == 0 else ws[level - 1]
        n += 9 * cin * ws[level] + 9 * ws[level] ** 2 + 4 * ws[level]
    for level in range(d - 1):
        n += 9 * (ws[level + 1] + ws[level]) * ws[level] + 9 * ws[level] ** 2 + 4 * ws[level]
    return n


def check_config(arch: str, channels: Any, depth: Any, width: Any) -> tuple[int, int, int]:
    """``(channels, depth, width)`` checked against :data:`CONFIG_PARAMS` and the size
    estimate :func:`parameter_count` against :data:`MAX_PARAMETERS`; ``ValueError`` naming
    the value and its range otherwise. Nothing is allocated."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    vals = {"channels": channels, "depth": depth, "width": width}
    out = resolve_params(CONFIG_PARAMS[arch], vals)
    if out["channels"] not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {out['channels']}")
    n = parameter_count(arch, out["channels"], out["depth"], out["width"])
    if n > MAX_PARAMETERS:
        raise ValueError(
            f"a {arch} of depth {out['depth']} and width {out['width']} has {n:,} parameters "
            f"({4 * n / 2**30:.1f} GiB), over the limit of {MAX_PARAMETERS:,}"
        )
    return out["channels"], out["depth"], out["width"]


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Pad the bottom/right of (N,C,H,W) to multiples of ``m`` (reflect; replicate if too small).

    Linear in x, so it keeps the network homogeneous.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if not (ph or pw):
        return x
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class BFBatchNorm2d(nn.Module):
    """Bias-free batch norm: ``x / sd * gain`` per channel (no mean, no shift).

    Training mode divides by the batch standard deviation sqrt(Var[x] + eps) and
    updates ``running_sd`` with an exponential moving average; eval mode divides by
    ``running_sd`` only and never changes it (so the layer is linear in eval mode).
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_sd", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            xf = x.float()
            sd = torch.sqrt(xf.var(dim=(0, 2, 3), unbiased=False) + self.eps)
            with torch.no_grad():
                self.running_sd.mul_(1 - self.momentum).add_(self.momentum * sd.detach())
        else:
            sd = self.running_sd
        scale = (self.gain / sd).to(x.dtype)
        return x * scale.view(1, -1, 1, 1)

    def scale(self) -> torch.Tensor:
        """The eval-mode per-channel factor gain / running_sd."""
        return self.gain / self.running_sd


class ConvBN(nn.Module):
    """3×3 bias-free convolution, optional BF batch norm, optional ReLU."""

    def __init__(self, cin: int, cout: int, *, norm: bool = True, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn: BFBatchNorm2d | None = BFBatchNorm2d(cout) if norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the eval-mode rescaling into the conv weights (exact: no bias anywhere)."""
        if self.bn is not None:
            s = self.bn.scale().to(self.conv.weight.dtype)
            self.conv.weight.mul_(s.view(-1, 1, 1, 1))
            self.bn = None


class _BFBase(nn.Module):
    arch = ""

    def __init__(self, channels: int, depth: int, width: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels, self.depth, self.width = int(channels), int(depth), int(width)

    def config(self) -> dict[str, Any]:
        return {"arch": self.arch, "channels": self.channels, "depth": self.depth, "width": self.width}

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """Predicted noise f(y); the denoised image is y − f(y)."""
        return self.forward(y)

    def denoise(self, y: torch.Tensor) -> torch.Tensor:
        """x̂ = y − f(y)."""
        return y - self.forward(y)

    def fold(self) -> _BFBase:
        """Fold every BF batch norm into its convolution (in place; call in eval mode)."""
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fold()
        return self

    @property
    def folded(self) -> bool:
        return not any(isinstance(m, BFBatchNorm2d) for m in self.modules())

    def receptive_radius(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    #: spatial sizes must be multiples of this (the UNet pads internally; tiling aligns to it)
    multiple = 1

    def flops_per_pixel(self) -> float:
        """Multiply-adds per input pixel (convolutions only)."""
        total = 0.0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                total += m.in_channels * m.out_channels * 9 * getattr(m, "_scale_factor", 1.0)
        return total


class BFCNN(_BFBase):
    """DnCNN-shaped bias-free CNN: conv+ReLU, (depth−2)×(conv+BFBN+ReLU), conv."""

    arch = "bfcnn"

    def __init__(self, channels: int = 1, depth: int = 20, width: int = 64) -> None:
        super().__init__(channels, depth, width)
        if depth < 3:
            raise ValueError("bfcnn depth must be >= 3")
        layers = [ConvBN(channels, width, norm=False)]
        layers += [ConvBN(width, width) for _ in range(depth - 2)]
        layers.append(ConvBN(width, channels, norm=False, relu=False))
        self.layers = nn.Sequential(*layers)
        _init(self)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.layers(y)

    def receptive_radius(self) -> int:
        return self.depth


class BFUNet(_BFBase):
    """Bias-free UNet: ``depth`` scales with widths w·2^l, avg-pool down, bilinear up, skip concat."""

    arch = "bfunet"

    def __init__(self, channels: int = 1, depth: int = 3, width: int = 32) -> None:
        super().__init__(channels, depth, width)
        if depth < 1:
            raise ValueError("bfunet depth must be >= 1")
        w = [width * 2**level for level in range(depth)]
        self.inc = ConvBN(channels, w[0], norm=False)
        self.enc = nn.ModuleList()
        for level in range(depth):
            cin = w[0] if level == 0 else w[level - 1]
            self.enc.append(nn.Sequential(ConvBN(cin, w[level]), ConvBN(w[level], w[level])))
        self.dec = nn.ModuleList()
        for level in range(depth - 1):
            self.dec.append(
                nn.Sequential(ConvBN(w[level + 1] + w[level], w[level]), ConvBN(w[level], w[level]))
            )
        self.out = ConvBN(w[0], channels, norm=False, relu=False)
        self.multiple = 2 ** (depth - 1)
        for level, blk in enumerate(self.enc):
            for m in blk.modules():
                if isinstance(m, nn.Conv2d):
                    m._scale_factor = 4.0**-level  # type: ignore[attr-defined]
        for level, blk in enumerate(self.dec):
            for m in blk.modules():
                if isinstance(m, nn.Conv2d):
                    m._scale_factor = 4.0**-level  # type: ignore[attr-defined]
        _init(self)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        x = self.inc(pad_to_multiple(y, self.multiple))
        skips = []
        for level, blk in enumerate(self.enc):
            if level > 0:
                x = F.avg_pool2d(x, 2)
            x = blk(x)
            skips.append(x)
        for level in range(self.depth - 2, -1, -1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.dec[level](torch.cat([x, skips[level]], dim=1))
        return self.out(x)[..., :h, :w]

    def receptive_radius(self) -> int:
        # conservative: each 3x3 conv at scale l adds 2^l, each pool/upsample adds 2^l
        r = 2  # inc + out
        for level in range(self.depth):
            r += 2 * 2**level  # encoder block
            if level < self.depth - 1:
                r += 2 * 2**level  # decoder block
            if level > 0:
                r += 2 * 2**level  # pool + upsample
        return r


def _init(net: nn.Module) -> None:
    """Kaiming-normal conv init (ReLU), unit gains, small last layer (x̂ ≈ y at start)."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    for c in convs:
        nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
    with torch.no_grad():
        convs[-1].weight.mul_(0.1 / math.sqrt(2))


def build_model(
    arch: str = "bfcnn", channels: int = 1, depth: int | None = None, width: int | None = None
) -> _BFBase:
    """A fresh bias-free network of the named architecture; the configuration is checked by
    :func:`check_config` (declared ranges, parameter count) before anything is built."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    d0, w0 = DEFAULTS[arch]
    channels, depth, width = check_config(arch, channels, d0 if depth is None else depth,
                                          w0 if width is None else width)
    cls = BFCNN if arch == "bfcnn" else BFUNet
    return cls(channels=channels, depth=depth, width=width)

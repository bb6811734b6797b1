"""Multiply-adds of a network per input pixel, counted on a real forward pass.

Training and inference throughput are reported as effective TFLOP/s:
``pixels/s × MACs/pixel × 2`` for a forward pass and ``× 6`` for a training step (forward,
gradient with respect to the input and with respect to the weights, each about one forward
of multiply-adds; Kaplan et al. 2020 use the same 6·N·D rule). Only convolutions are
counted: the norms, ReLUs, pooling and upsampling are a few operations per activation,
negligible beside 9·C_in multiply-adds per output of a 3×3 convolution.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["macs_per_pixel", "count_macs"]


@torch.no_grad()
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every ``nn.Conv2d`` in one forward pass of ``model`` on ``x``.

    A convolution producing an output of N×C_out×H×W with a k_h×k_w kernel over C_in/groups
    input channels costs N·C_out·H·W·(C_in/groups)·k_h·k_w multiply-adds; forward hooks add
    them up, so every scale of a UNet is counted at the size it really runs at.
    """
    total = 0

    def hook(mod: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return total


def macs_per_pixel(model: nn.Module, size: int = 64) -> float:
    """Multiply-adds per input pixel of a forward pass at ``size``² (one image, on a CPU copy's device).

    ``size`` should be a multiple of the network's down-sampling factor (it is rounded up
    to one), so no internal padding is counted.
    """
    mult = int(getattr(model, "multiple", 1))
    size = -(-int(size) // mult) * mult
    p = next(model.parameters())
    x = torch.zeros(1, int(getattr(model, "channels", 1)), size, size, device=p.device, dtype=p.dtype)
    return count_macs(model, x) / float(size * size)

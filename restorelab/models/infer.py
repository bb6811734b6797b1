"""Fast inference for bias-free networks: folding, precision, tiling, CUDA graphs.

- **Folding.** In eval mode a BF batch norm is ``x ↦ x · g/σ_run`` per channel; with no
  bias anywhere, it is folded exactly into the preceding convolution, W ← W · (g/σ_run).
- **Precision.** bf16 weights and activations (and TF32 matmuls, channels_last) on CUDA;
  float32 on CPU by default.
- **Tiling.** Large images are processed in tiles whose cores are ``tile`` pixels wide,
  with ``overlap`` ≥ the receptive-field radius of context on every side; the image is
  first padded exactly as the network pads internally and tiles are aligned to the
  network's down-sampling factor, so the result is the whole-image result (seamless).
- **CUDA graphs.** Repeated calls on the same shape (the samplers call the denoiser
  hundreds of times) replay a captured graph (only on CUDA).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from restorelab.models.nets import pad_to_multiple

__all__ = ["FastDenoiser", "fold_model"]


def fold_model(model: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of ``model`` with every BF batch norm folded into its convolution."""
    m = copy.deepcopy(model).eval()
    return m.fold()  # type: ignore[operator]


class FastDenoiser:
    """Folded bias-free network with the fast paths; ``residual(y)`` → f(y), ``denoise(y)`` → y − f(y).

    ``tile`` is the core tile size in pixels (0 = whole image unless it has more than
    ``auto_tile_pixels`` pixels); ``overlap`` defaults to the receptive-field radius.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: Any = "cpu",
        precision: str = "auto",
        tile: int = 0,
        overlap: int | None = None,
        cuda_graphs: bool = True,
        fold: bool = True,
        auto_tile_pixels: int = 2048 * 2048,
    ) -> None:
        from restorelab.device import resolve_device

        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16; got {precision!r}")
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        self.dtype = (
            torch.bfloat16 if (precision == "bf16" or (precision == "auto" and cuda)) else torch.float32
        )
        net = fold_model(model) if fold else copy.deepcopy(model).eval()
        net = net.to(self.device, self.dtype)
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
            net = net.to(memory_format=torch.channels_last)
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net
        self.channels = int(model.channels)  # type: ignore[arg-type]
        self.multiple = int(getattr(model, "multiple", 1))
        radius = int(model.receptive_radius())  # type: ignore[operator]
        ov = radius if overlap is None else int(overlap)
        self.overlap = int(math.ceil(ov / self.multiple) * self.multiple)
        t = int(tile)
        if t < 0:
            raise ValueError("tile must be >= 0")
        self.tile = int(math.ceil(t / self.multiple) * self.multiple) if t else 0
        self.auto_tile_pixels = auto_tile_pixels
        self.use_graphs = bool(cuda_graphs) and cuda
        self._graphs: dict[tuple[Any, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}

    # -- core forward --------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network on x (already on device, in self.dtype)."""
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            if self.use_graphs:
                return self._graph_forward(x)
        return self.net(x)

    def _graph_forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= 8:
                self._graphs.clear()
            static_in = x.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    self.net(static_in)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static_out = self.net(static_in)
            entry = (g, static_in, static_out)
            self._graphs[key] = entry
        g, static_in, static_out = entry
        static_in.copy_(x)
        g.replay()
        return static_out.clone()

    @torch.inference_mode()
    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """f(y) for y (N, C, H, W); returned on y's device in y's (floating) dtype."""
        if y.ndim != 4 or y.shape[1] != self.channels:
            raise ValueError(f"expected (N,{self.channels},H,W), got {tuple(y.shape)}")
        out_dtype = y.dtype if y.dtype.is_floating_point else torch.float32
        x = y.to(self.device, self.dtype)
        h, w = x.shape[-2:]
        tile = self.tile
        if not tile and h * w > self.auto_tile_pixels:
            tile = 1024
        if tile and (h > tile + 2 * self.overlap or w > tile + 2 * self.overlap):
            r = self._tiled(x, tile)
        else:
            r = self._forward(x)
        return r.to(y.device, out_dtype)

    def denoise(self, y: torch.Tensor) -> torch.Tensor:
        """x̂ = y − f(y) (unclipped)."""
        r = self.residual(y)
        return y.to(r.dtype) - r

    __call__ = denoise

    def _tiled(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = pad_to_multiple(x, self.multiple)
        hp, wp = xp.shape[-2:]
        ov = self.overlap
        out = torch.empty(x.shape[0], x.shape[1], hp, wp, device=x.device, dtype=x.dtype)
        for i0 in range(0, hp, tile):
            i1 = min(i0 + tile, hp)
            a0, a1 = max(0, i0 - ov), min(hp, i1 + ov)
            for j0 in range(0, wp, tile):
                j1 = min(j0 + tile, wp)
                b0, b1 = max(0, j0 - ov), min(wp, j1 + ov)
                r = self._forward(xp[..., a0:a1, b0:b1].contiguous())
                out[..., i0:i1, j0:j1] = r[..., i0 - a0 : i1 - a0, j0 - b0 : j1 - b0]
        return out[..., :h, :w]

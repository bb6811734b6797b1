"""Fast inference for bias-free networks: folding, precision, tiling, CUDA graphs.

- **Folding.** In eval mode a BF batch norm is ``x ↦ x · g/σ_run`` per channel; with no
  bias anywhere, it is folded exactly into the preceding convolution, W ← W · (g/σ_run).
- **Precision.** bf16 weights and activations (and TF32 matmuls, channels_last) on CUDA;
  float32 on CPU by default.
- **Tiling.** Large images are processed in tiles whose cores are ``tile`` pixels wide,
  with ``overlap`` ≥ the receptive-field radius of context on every side; the image is
  padded exactly as the network pads internally and tiles are aligned to the network's
  down-sampling factor, so the result is the whole-image result (seamless). One tiler,
  :func:`tiled_job`, serves every caller: it yields a :class:`~restorelab.jobs.Progress`
  after each tile, so progress advances and a cancel (closing the generator) acts within
  one tile, and it holds only one tile's activations at a time (bounded memory).
- **CUDA graphs.** Repeated calls on the same shape (the samplers call the denoiser
  hundreds of times) replay a captured graph (only on CUDA).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Generator
from typing import Any

import torch
import torch.nn.functional as F

from restorelab.jobs import Progress, run_job
from restorelab.models.nets import pad_to_multiple

__all__ = ["FastDenoiser", "fold_model", "tiled_job", "tile_grid"]


def tile_grid(h: int, w: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Cores ``(i0, i1, j0, j1)`` of a ``tile``-pixel grid over an ``h``×``w`` image, row by row."""
    return [
        (i0, min(i0 + tile, h), j0, min(j0 + tile, w))
        for i0 in range(0, h, tile)
        for j0 in range(0, w, tile)
    ]


def _pad_mode(h: int, w: int, m: int) -> str:
    """The mode :func:`~restorelab.models.nets.pad_to_multiple` uses for an h×w image."""
    ph, pw = (-h) % m, (-w) % m
    return "reflect" if (ph < h and pw < w) else "replicate"


def tiled_job(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    multiple: int = 1,
    message: str = "tile",
) -> Generator[Progress, None, torch.Tensor]:
    """Apply a translation-equivariant image map ``fn`` tile by tile, as a job.

    Parameters
    ----------
    fn : callable
        Maps an (N, C, h, w) tensor to (N, C', h, w) (h, w multiples of ``multiple``).
    x : torch.Tensor
        The image, (N, C, H, W) (N = 1 for a photo); it may be a non-contiguous view (e.g. a
        permuted HWC array), only one tile at a time is copied.
    tile : int
        Core size in pixels (rounded up to ``multiple``); 0 or an image that fits in one
        tile plus its context runs ``fn`` once.
    overlap : int
        Context on every side of a core (rounded up to ``multiple``).
    multiple : int
        Spatial sizes ``fn`` requires (a U-Net's down-sampling factor). The image is padded
        to it as :func:`~restorelab.models.nets.pad_to_multiple` pads (bottom/right, reflect),
        tile by tile, and tiles start on multiples of it so that pooling grids coincide.

    Returns
    -------
    torch.Tensor
        (N, C', H, W) in ``fn``'s dtype on ``x``'s device.

    Notes
    -----
    The core of a tile depends only on pixels within the receptive-field radius r of it; a
    tile's outer ring of width ``overlap`` ≥ r absorbs the zero padding at the tile's cut
    edges, and at the image's own edges the tile's padding *is* the image's. The assembled
    cores are therefore exactly ``fn`` of the whole image (up to float summation order).
    Peak memory is the input, the output and one tile's working set, whatever the image
    size; a :class:`~restorelab.jobs.Progress` follows each tile so a consumer can cancel
    between two tiles.
    """
    if x.ndim != 4:
        raise ValueError(f"tiled_job expects (N, C, H, W), got {tuple(x.shape)}")
    m = max(1, int(multiple))
    ov = int(math.ceil(max(0, int(overlap)) / m) * m)
    t = int(math.ceil(max(0, int(tile)) / m) * m)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    hp, wp = h + (-h) % m, w + (-w) % m
    if not t or (hp <= t + 2 * ov and wp <= t + 2 * ov):
        yield Progress(0, 1, message=message)
        r = fn(pad_to_multiple(x.contiguous(), m))
        yield Progress(1, 1, message=message)
        return r[..., :h, :w]
    mode = _pad_mode(h, w, m)
    if (hp != h or wp != w) and ov < m:
        x = pad_to_multiple(x, m)  # a tile could hold fewer rows than its reflection needs
    cores = tile_grid(hp, wp, t)
    out: torch.Tensor | None = None
    for k, (i0, i1, j0, j1) in enumerate(cores):
        a0, a1 = max(0, i0 - ov), min(hp, i1 + ov)
        b0, b1 = max(0, j0 - ov), min(wp, j1 + ov)
        piece = x[..., a0 : min(a1, x.shape[-2]), b0 : min(b1, x.shape[-1])].contiguous()
        eh, ew = a1 - a0 - piece.shape[-2], b1 - b0 - piece.shape[-1]
        if eh or ew:
            piece = F.pad(piece, (0, ew, 0, eh), mode=mode)
        r = fn(piece)
        if out is None:
            # channels-last storage: a permuted (H, W, C) array is the result without a copy
            out = torch.empty(
                (x.shape[0], hp, wp, r.shape[1]), dtype=r.dtype, device=x.device
            ).permute(0, 3, 1, 2)
        out[..., i0:i1, j0:j1] = r[..., i0 - a0 : i1 - a0, j0 - b0 : j1 - b0].to(x.device)
        del r, piece
        yield Progress(k + 1, len(cores), message=f"{message} {k + 1}/{len(cores)}")
    assert out is not None
    return out[..., :h, :w]


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

    def tile_for(self, h: int, w: int, tile: int | None = None) -> int:
        """The core tile size used for an h×w image: ``tile`` if given, else the
        instance's, else 0 (whole) up to ``auto_tile_pixels`` pixels and 1024 beyond."""
        t = self.tile if tile is None else int(tile)
        if not t and h * w > self.auto_tile_pixels:
            t = 1024
        return t

    def residual_job(
        self, y: torch.Tensor, tile: int | None = None
    ) -> Generator[Progress, None, torch.Tensor]:
        """f(y) as a :func:`tiled_job` (progress per tile); on y's device, y's floating dtype.

        ``y`` is (N, C, H, W), possibly a non-contiguous view; only one tile at a time is
        moved to the device and converted.
        """
        if y.ndim != 4 or y.shape[1] != self.channels:
            raise ValueError(f"expected (N,{self.channels},H,W), got {tuple(y.shape)}")
        out_dtype = y.dtype if y.dtype.is_floating_point else torch.float32
        h, w = int(y.shape[-2]), int(y.shape[-1])

        def fn(t: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return self._forward(t.to(self.device, self.dtype)).to(y.device, out_dtype)

        return (yield from tiled_job(
            fn, y, tile=self.tile_for(h, w, tile), overlap=self.overlap, multiple=self.multiple,
            message="tile",
        ))

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """f(y) for y (N, C, H, W); returned on y's device in y's (floating) dtype."""
        return run_job(self.residual_job(y))

    def denoise(self, y: torch.Tensor) -> torch.Tensor:
        """x̂ = y − f(y) (unclipped)."""
        r = self.residual(y)
        return y.to(r.dtype) - r

    __call__ = denoise

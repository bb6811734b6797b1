"""Shared helpers of the prior package (not public)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from restorelab.denoise.base import Denoiser


def as_denoiser(denoiser: Any, device: Any = "auto") -> Denoiser:
    """A :class:`Denoiser` from an instance or a registry name."""
    if isinstance(denoiser, Denoiser):
        return denoiser
    if isinstance(denoiser, str):
        from restorelab import denoise

        return denoise.get(denoiser, device=device)
    raise TypeError(f"expected a Denoiser or a registered denoiser name, got {type(denoiser).__name__}")


def image_to_tensor(image: Any, device: torch.device) -> tuple[torch.Tensor, bool]:
    """(H, W) or (H, W, C) numpy image → float32 tensor (1, C, H, W) (RGBA: RGB); also torch tensors."""
    if isinstance(image, torch.Tensor):
        t = image.detach().to(device=device, dtype=torch.float32)
        if t.ndim == 2:
            return t[None, None], False
        if t.ndim == 3:
            return t[None], True
        if t.ndim == 4:
            return t, True
        raise ValueError(f"expected a (C,H,W) or (N,C,H,W) tensor, got {tuple(t.shape)}")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy image, got {type(image).__name__}")
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number):
        raise TypeError(f"expected a numeric image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # RGBA: the alpha channel is not part of the signal
    if image.ndim == 2:
        arr, chan = image[None], False
    elif image.ndim == 3 and image.shape[2] in (1, 3):
        arr, chan = np.moveaxis(image, 2, 0), True
    else:
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1, 3; got shape {image.shape}")
    if arr.size == 0:
        raise ValueError("empty image")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or infinite values")
    return torch.from_numpy(arr)[None].to(device), chan


def tensor_to_image(t: torch.Tensor, channels_last: bool) -> np.ndarray:
    """(C, H, W) tensor → (H, W) if C == 1 and not ``channels_last`` else (H, W, C), float32 numpy."""
    a = t.detach().to("cpu", torch.float32).numpy()
    if a.shape[0] == 1 and not channels_last:
        return np.ascontiguousarray(a[0])
    return np.ascontiguousarray(np.moveaxis(a, 0, 2))


def thumbnail(t: torch.Tensor, max_side: int = 128) -> torch.Tensor:
    """Area-downsampled copy of a (C, H, W) tensor whose larger side is at most ``max_side``."""
    h, w = t.shape[-2:]
    s = max(h, w)
    if s <= max_side:
        return t.detach().clone()
    size = (max(1, round(h * max_side / s)), max(1, round(w * max_side / s)))
    return torch.nn.functional.interpolate(t[None].float(), size=size, mode="area")[0]


def call_denoiser(den: Denoiser, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x̂(y) batched on the device; ``sigma`` (N,) is passed to non-blind denoisers (blind ones ignore it)."""
    s = sigma.detach().clamp_min(0).to("cpu", torch.float32)
    out = den.denoise_tensor(y, s if s.numel() > 1 else float(s.reshape(-1)[0]))
    if not isinstance(out, torch.Tensor) or out.shape != y.shape:
        raise RuntimeError(f"denoiser {den!r} returned a bad result for a {tuple(y.shape)} batch")
    return out.to(device=y.device, dtype=y.dtype)

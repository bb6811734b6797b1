"""The learned blind bias-free denoiser (BF-CNN, Mohan et al. ICLR 2020) in the registry.

``denoise.get("bfcnn")(y, sigma)``: σ is accepted but not needed (the network is blind).
``model="auto"`` picks the shipped gray or colour weights by the image's channels
(``$RESTORELAB_BFCNN_GRAY`` / ``$RESTORELAB_BFCNN_COLOR`` override them); ``gray``,
``color``, ``digits`` or a path to a ``.safetensors`` file choose one. The output is
x̂ = y − f(y), unclipped, so that x̂ − y estimates σ²∇log p(y) (Kadkhodaie & Simoncelli 2021).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.denoise import register
from restorelab.denoise.base import Denoiser
from restorelab.params import Param

__all__ = ["BFCNNDenoiser", "load_denoiser_model", "model_path", "clear_cache"]

_NAMES = {
    "gray": "bfcnn_gray.safetensors",
    "color": "bfcnn_color.safetensors",
    "digits": "bfcnn_digits.safetensors",
}
_ENV = {
    "gray": "RESTORELAB_BFCNN_GRAY",
    "color": "RESTORELAB_BFCNN_COLOR",
    "digits": "RESTORELAB_BFCNN_DIGITS",
}
_CACHE: dict[tuple[str, str, str, int], Any] = {}
_LOCK = threading.Lock()


def model_path(name_or_path: str, channels: int = 1) -> Path:
    """Resolve ``auto`` (by channels), ``gray``/``color``/``digits`` (shipped; env overrides) or a path."""
    from restorelab.resources import models_dir

    key = str(name_or_path)
    if key == "auto":
        key = "color" if channels == 3 else "gray"
    if key in _NAMES:
        env = os.environ.get(_ENV[key])
        p = Path(env) if env else models_dir() / _NAMES[key]
        if not p.is_file():
            raise FileNotFoundError(
                f"the {key} bias-free model is not installed ({p}); train one with `restorelab train` "
                f"or pass model=PATH"
            )
        return p
    p = Path(key).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    return p


def load_denoiser_model(
    name_or_path: str = "auto",
    device: Any = "auto",
    *,
    channels: int = 1,
    precision: str = "auto",
    tile: int = 0,
) -> Any:
    """A cached :class:`~restorelab.models.infer.FastDenoiser` (folded, ready) for a model name or path."""
    from restorelab.device import resolve_device
    from restorelab.models.infer import FastDenoiser
    from restorelab.models.weights import load_model

    p = model_path(name_or_path, channels).resolve()
    dev = resolve_device(device)
    st = p.stat()
    key = (f"{p}:{st.st_mtime_ns}:{st.st_size}", str(dev), precision, int(tile))
    with _LOCK:
        fast = _CACHE.get(key)
        if fast is None:
            model, _meta = load_model(p, "cpu")
            fast = FastDenoiser(model, dev, precision=precision, tile=tile)
            fast.meta = _meta
            fast.path = p
            _CACHE[key] = fast
    return fast


def clear_cache() -> None:
    """Forget every loaded model."""
    with _LOCK:
        _CACHE.clear()


@register
class BFCNNDenoiser(Denoiser):
    """Blind bias-free CNN: x̂ = y − f(y), one network for every σ."""

    name = "bfcnn"
    title = "Bias-free CNN (learned, blind)"
    family = "learned"
    citation = (
        "Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, Robust and interpretable blind image "
        "denoising via bias-free CNNs, ICLR 2020"
    )
    torch_native = True
    cost_s_per_mp = 5.0  # restorelab bench cost
    params = (
        Param(
            "model",
            str,
            "auto",
            label="Network weights",
            help="auto (gray/colour by the image), gray, color, digits or a .safetensors path",
        ),
        Param("tile", int, 0, lo=0, hi=8192, unit="px", label="Tile size",
              help="tile size for large images (0 = automatic)"),
        Param("precision", str, "auto", choices=("auto", "fp32", "bf16"), label="Arithmetic precision",
              help="bf16 on CUDA when auto"),
    )

    def _fast(self, channels: int) -> Any:
        p = self.resolved(0.1)
        return load_denoiser_model(
            p["model"], self.device, channels=channels, precision=p["precision"], tile=p["tile"]
        )

    def _apply(self, y: Any) -> Any:
        """x̂ for a (N, C, H, W) tensor; a 1-channel model runs per channel on colour input."""
        import torch

        c = int(y.shape[1])
        fast = self._fast(c)
        if fast.channels == c:
            return fast.denoise(y)
        if fast.channels == 1:
            return torch.cat([fast.denoise(y[:, k : k + 1]) for k in range(c)], dim=1)
        if c == 1:  # colour model on a gray image: replicate, then average
            return fast.denoise(y.expand(-1, 3, -1, -1).contiguous()).mean(dim=1, keepdim=True)
        raise ValueError(f"a {fast.channels}-channel model cannot denoise a {c}-channel image")

    def _denoise(self, x: np.ndarray, sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        out = self._apply(t)
        return out[0].float().cpu().numpy().transpose(1, 2, 0)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        """Batched x̂ = y − f(y) for (N, C, H, W) on y's device (σ ignored: blind)."""
        return self._apply(y)

    def residual(self, y: Any) -> Any:
        """f(y) = y − x̂ for a (N, C, H, W) tensor."""
        return y - self._apply(y)

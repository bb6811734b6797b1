"""The one denoiser interface.

A denoiser maps a noisy image ``y`` and its noise level σ (on the [0, 1] scale) to an
estimate ``x̂ = D(y, σ)``. Classical and learned methods alike subclass :class:`Denoiser`,
declare their parameters once in ``params`` and implement either ``_denoise`` (one shot)
or ``_job`` (iterative: a generator of :class:`~restorelab.jobs.Progress`, cancellable
between iterations). Torch-native methods also implement ``_denoise_tensor`` so that the
samplers can call them on batches without leaving the GPU.

Array conventions: numpy images are (H, W) or (H, W, C), torch tensors (C, H, W) or
(N, C, H, W); the output has the input's type, shape and (floating) dtype. An RGBA image
is denoised on RGB and keeps its alpha. σ = 0 returns a copy of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

import numpy as np

from restorelab.jobs import CancelToken, Progress, run_job, single_step
from restorelab.params import Param, resolve_params

__all__ = ["Denoiser", "as_hwc", "check_sigma"]


def check_sigma(sigma: Any) -> float:
    """σ as a float ≥ 0 (ValueError otherwise)."""
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a number, got {sigma!r}") from None
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    return s


def as_hwc(y: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert an image (numpy (H,W)/(H,W,C) or torch (C,H,W)) to float32 (H, W, C).

    Returns the array and a function mapping an (H, W, C) result back to the input's
    type and layout. Raises ``ValueError`` for non-finite values or a bad shape and
    ``TypeError`` for something that is not an array.
    """
    torch_in = False
    dtype: Any = np.float32
    if isinstance(y, np.ndarray):
        arr = y
    else:
        try:
            import torch
        except ImportError:  # pragma: no cover
            torch = None  # type: ignore[assignment]
        if torch is not None and isinstance(y, torch.Tensor):
            torch_in = True
            tdev, tdtype = y.device, y.dtype
            if y.ndim not in (2, 3):
                raise ValueError(f"expected a (C,H,W) or (H,W) tensor, got shape {tuple(y.shape)}")
            t = y.detach().float().cpu()
            arr = (t if t.ndim == 2 else t.permute(1, 2, 0)).numpy()
        else:
            raise TypeError(f"expected a numpy array or torch tensor image, got {type(y).__name__}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"expected a numeric image, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        dtype = arr.dtype
    if arr.ndim == 2:
        squeeze = True
        x = arr[:, :, None]
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        squeeze = False
        x = arr
    else:
        raise ValueError(f"expected an (H,W) or (H,W,C) image with C in 1,3,4; got shape {arr.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("image contains NaN or infinite values; replace them first (e.g. numpy.nan_to_num)")

    def back(out: np.ndarray) -> Any:
        o = out[:, :, 0] if squeeze else out
        if torch_in:
            import torch

            t = torch.from_numpy(np.ascontiguousarray(o))
            if t.ndim == 3:
                t = t.permute(2, 0, 1)
            return t.to(device=tdev, dtype=tdtype if tdtype.is_floating_point else torch.float32)
        return o.astype(dtype, copy=False)

    return x, back


class Denoiser:
    """Base class: ``D(y, sigma) -> x̂``; ``job(y, sigma)`` is the same work step by step."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    family: ClassVar[str] = "classical"
    citation: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    iterative: ClassVar[bool] = False
    #: denoise colour channels independently (True) or jointly (False)
    per_channel: ClassVar[bool] = False
    #: implemented in torch (runs on CUDA when asked)
    torch_native: ClassVar[bool] = False

    def __init__(self, *, device: Any = "auto", **values: Any) -> None:
        resolve_params(self.params, values, None)  # raises ParamError for unknown/bad values
        self.values: dict[str, Any] = dict(values)
        self.device = device

    # -- parameters ---------------------------------------------------------------------
    def resolved(self, sigma: float) -> dict[str, Any]:
        """Parameter values at noise level σ (explicit values over σ-dependent defaults)."""
        return resolve_params(self.params, self.values, sigma)

    def with_params(self, **values: Any) -> Denoiser:
        """A copy with some parameters changed."""
        return type(self)(device=self.device, **{**self.values, **values})

    # -- running ------------------------------------------------------------------------
    def job(self, y: Any, sigma: float) -> Generator[Progress, None, Any]:
        """Generator job: yields progress, returns the denoised image (input's type)."""
        s = check_sigma(sigma)
        x, back = as_hwc(y)
        p = self.resolved(s)
        if s == 0:
            yield Progress(1, 1, message="sigma = 0: nothing to remove")
            return back(x.copy())
        alpha = None
        if x.shape[2] == 4:
            x, alpha = x[:, :, :3], x[:, :, 3:]
        if self.per_channel and x.shape[2] > 1:
            outs = []
            for c in range(x.shape[2]):
                xc = np.ascontiguousarray(x[:, :, c : c + 1])
                outs.append((yield from self._job(xc, s, p)))
            out = np.concatenate(outs, axis=2)
        else:
            out = yield from self._job(np.ascontiguousarray(x), s, p)
        out = np.asarray(out, dtype=np.float32).reshape(x.shape)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
        return back(out)

    def __call__(
        self,
        y: Any,
        sigma: float,
        *,
        cancel: CancelToken | None = None,
        on_progress: Callable[[Progress], Any] | None = None,
    ) -> Any:
        """Denoise ``y`` at noise level ``sigma`` (runs the job to the end)."""
        return run_job(self.job(y, sigma), cancel=cancel, on_progress=on_progress)

    def denoise_tensor(self, y: Any, sigma: Any) -> Any:
        """Batched torch path: ``y`` (N, C, H, W) → x̂ of the same shape and device.

        ``sigma`` is a float or a tensor of N values. Torch-native methods override
        :meth:`_denoise_tensor`; others run on numpy image by image.
        """
        import torch

        if y.ndim != 4:
            raise ValueError(f"denoise_tensor expects (N,C,H,W), got {tuple(y.shape)}")
        if self.torch_native:
            return self._denoise_tensor(y, sigma)
        sig = torch.as_tensor(sigma, dtype=torch.float32).flatten()
        outs = []
        for i in range(y.shape[0]):
            s = float(sig[i] if sig.numel() > 1 else sig[0])
            outs.append(self(y[i], s))
        return torch.stack(outs).to(y.device, y.dtype)

    # -- to implement -------------------------------------------------------------------
    def _job(
        self, x: np.ndarray, sigma: float, p: Mapping[str, Any]
    ) -> Generator[Progress, None, np.ndarray]:
        """Iterative methods override this; ``x`` is float32 (H, W, C), C in {1, 3}."""
        return (yield from single_step(lambda: self._denoise(x, sigma, p), self.name))

    def _denoise(self, x: np.ndarray, sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"

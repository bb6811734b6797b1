"""The one denoiser interface.

A denoiser maps a noisy image ``y`` and its noise level σ (on the [0, 1] scale) to an
estimate ``x̂ = D(y, σ)``. Classical and learned methods alike subclass :class:`Denoiser`,
declare their parameters once in ``params`` and implement either ``_denoise`` (one shot)
or ``_job`` (iterative: a generator of :class:`~restorelab.jobs.Progress`, cancellable
between iterations). Torch-native methods also implement ``_denoise_tensor`` so that the
samplers can call them on batches without leaving the GPU.

Array conventions: numpy images are (H, W) or (H, W, C), torch tensors (C, H, W) or
(N, C, H, W); the output has the input's type, shape and dtype. An RGBA image
is denoised on RGB and keeps its alpha. σ = 0 returns a copy of the input. Integer images
are converted by the one image policy (:mod:`restorelab.image`): ``D(uint8 y)`` is ``D(y/255)``
rounded back to uint8. σ must lie in [0, :data:`~restorelab.params.SIGMA_MAX`] on the [0, 1]
scale (:func:`~restorelab.params.check_sigma`).

Each class declares its cost, ``cost_s_per_mp``: seconds per megapixel of a colour image on
one CPU core at default parameters (σ = 25/255), checked against measurement by
``restorelab bench cost``; :func:`preview_ok` uses it to decide whether the GUI may run a
method live.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from restorelab.image import as_float_image, from_float_image, image_dtype
from restorelab.jobs import CancelToken, Progress, run_job, single_step
from restorelab.params import SIGMA_MAX, Param, check_sigma, resolve_params

__all__ = ["Denoiser", "as_hwc", "check_sigma", "preview_ok", "PREVIEW_BUDGET_S"]

#: seconds a live preview may take (the GUI runs a method on every parameter change below it)
PREVIEW_BUDGET_S = 0.25


def as_hwc(y: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert an image to float32 (H, W, C) on the [0, 1] scale, by the one image policy
    (:func:`restorelab.image.as_float_image`: uint8 → x/255, uint16 → x/65535, bool → 0/1,
    floats as they are).

    ``y`` is a numpy (H, W) / (H, W, C) array or a torch (C, H, W) / (H, W) tensor. Returns
    the array and a function mapping an (H, W, C) result back to the input's type, layout and
    dtype (:func:`restorelab.image.from_float_image`: integer images are clipped to [0, 1] and
    rounded to the nearest level; tensors come back as floating tensors on their device).
    Raises ``ValueError`` for non-finite values or a bad shape and ``TypeError`` for an
    unsupported dtype or something that is not an image.
    """
    torch = sys.modules.get("torch")
    torch_in = torch is not None and isinstance(y, torch.Tensor)
    dtype = image_dtype(y)
    x = as_float_image(y, alpha="keep")
    in_ndim = y.ndim if torch_in else np.ndim(y)
    x3 = x[:, :, None] if x.ndim == 2 else x
    if torch_in:
        tdev, tdtype = y.device, y.dtype

    def back(out: np.ndarray) -> Any:
        o = out[:, :, 0] if in_ndim == 2 else out
        if torch_in:
            t = torch.from_numpy(np.ascontiguousarray(o, dtype=np.float32))
            if t.ndim == 3:
                t = t.permute(2, 0, 1)
            return t.to(device=tdev, dtype=tdtype if tdtype.is_floating_point else torch.float32)
        return from_float_image(o, dtype)

    return np.ascontiguousarray(x3), back


def preview_ok(denoiser: Denoiser, shape: Sequence[int], budget_s: float = PREVIEW_BUDGET_S,
               device: Any = None) -> bool:
    """True when ``denoiser`` (an instance, or a class: only its declared costs are read) is
    expected to finish an image of ``shape`` within ``budget_s`` seconds
    (:meth:`Denoiser.estimate_seconds` on ``device``, default the denoiser's own, else the CPU),
    so that a live preview may run it on every parameter change without building it first."""
    dev = device if device is not None else getattr(denoiser, "device", "cpu")
    if isinstance(dev, property):
        dev = "cpu"
    return Denoiser.estimate_seconds(denoiser, shape, dev) <= budget_s  # type: ignore[arg-type]


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
    #: estimates the noise itself: σ is accepted and ignored (the command line may omit it)
    blind: ClassVar[bool] = False
    #: seconds per megapixel of a 3-channel image, one CPU core, default parameters at σ = 25/255
    #: (a declared tier; ``restorelab bench cost`` prints it beside the measured value); a class
    #: that declares none is treated as slow
    cost_s_per_mp: ClassVar[float] = 10.0
    #: the same on a CUDA device (torch-native methods); None: not declared, the CPU figure is used
    cost_s_per_mp_cuda: ClassVar[float | None] = None

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

    def estimate_seconds(self, shape: Sequence[int], device: Any = None) -> float:
        """Expected run time in seconds for an image of ``shape`` ((H, W) or (H, W, C)) on
        ``device`` (default: the denoiser's own).

        The declared :attr:`cost_s_per_mp` scaled by the number of samples, H·W·C / (3·10⁶):
        the work of every method here grows linearly with the pixels and (per channel or
        jointly) about linearly with the channels. The CUDA figure is used for torch-native
        methods on a CUDA device when it is declared.
        """
        dims = [int(v) for v in shape]
        if len(dims) not in (2, 3) or min(dims) < 1:
            raise ValueError(f"shape must be (H, W) or (H, W, C) with positive sides, got {tuple(shape)!r}")
        channels = 1 if len(dims) == 2 else min(dims[2], 3)  # alpha is carried, not denoised
        rate = self.cost_s_per_mp
        dev = self.device if device is None else device
        if self.torch_native and self.cost_s_per_mp_cuda is not None and _is_cuda(dev):
            rate = self.cost_s_per_mp_cuda
        return rate * dims[0] * dims[1] * channels / 3e6

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

        This is the samplers' path: their effective noise σ_t may exceed the intensity range
        in the first iterations (σ₀ up to 10), so σ above :data:`SIGMA_MAX` is clamped to it
        here (a denoiser at σ = 1 already leaves little beyond local means); negative or NaN σ
        raise ``ValueError``.
        """
        import torch

        if y.ndim != 4:
            raise ValueError(f"denoise_tensor expects (N,C,H,W), got {tuple(y.shape)}")
        sig = torch.as_tensor(sigma, dtype=torch.float32).flatten()
        if sig.numel() == 0 or bool(torch.isnan(sig).any()) or float(sig.min()) < 0:
            raise ValueError(f"sigma must be >= 0 and not NaN, got {sigma!r}")
        sig = sig.clamp(max=SIGMA_MAX)
        if self.torch_native:
            return self._denoise_tensor(y, sig if sig.numel() > 1 else float(sig[0]))
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


def _is_cuda(device: Any) -> bool:
    if device is None or device == "auto":
        from restorelab.device import cuda_available

        return cuda_available()
    return str(device).startswith("cuda")

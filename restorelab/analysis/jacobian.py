"""The Jacobian of a denoiser at an image, and what it says about the denoiser.

A denoiser x̂ = f(y) is, near y, the linear map J(y) = ∂f/∂y. Its rows are *adaptive filters*
(x̂_i ≈ Σ_j J_ij y_j); for a bias-free network f is positively homogeneous, so Euler's identity
gives f(y) = J(y) y exactly and the rows are the filters the network applies to this very
image (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020). The eigen-decomposition of
its symmetric part, J ≈ Σ_k λ_k e_k e_kᵀ, is an adaptive basis with shrinkage factors λ_k; tr J
is the effective dimensionality of the denoiser's output, the number of directions it keeps
(Kadkhodaie, Guth, Simoncelli & Mallat, ICLR 2024). For an MMSE denoiser,
J = I + σ²∇² log p(y) is symmetric with eigenvalues in [0, 1] (Milanfar & Delbracio 2024).

How J is computed, chosen by :func:`jacobian_method` and stated in every result:

* ``masked-linear``: the project's bias-free networks (:mod:`restorelab.models.nets`: 3×3
  convolutions without bias, folded BF batch norm, ReLU, average pooling, bilinear upsampling,
  reflect padding, concatenation). Every layer but ReLU is linear, so at a fixed y the network
  *is* the linear map obtained by replacing each ReLU with multiplication by the 0/1 mask of its
  pre-activation sign in one forward pass on y, and J(y) is that map: column j is the masked
  network applied to the unit vector e_j. The columns are forward passes only (no graph, no
  backward), ``batch`` unit vectors at a time, float32, channels-last; exact, not approximate,
  and checked on the spot by Euler's identity J y = f(y) (falls back to ``autograd`` otherwise).
  Each column costs the multiply–adds of one forward pass, as each input-gradient VJP of
  ``autograd`` does (the weights need no gradient); what it saves is the recorded graph and the
  backward kernels (``restorelab bench analysis`` prints the ratio to ``torch.func.jacrev``);
* ``autograd``: other learned torch models; each row is one vector–Jacobian product of the float32
  network, ``batch`` of them at a time through one recorded forward pass (``torch.func.vjp``
  under ``vmap``, what ``torch.func.jacrev`` does, with progress and cancel between batches);
* ``exact-linear``: linear methods (heat, Gaussian, Tikhonov): column j is f(e_j), exact to
  float32 rounding, since f(y) = J y for every y;
* ``finite-differences``: every other method; column j is (f(y + h e_j) − f(y − h e_j)) / 2h
  (central) or (f(y + h e_j) − f(y)) / h (forward, when central would take too long),
  evaluated in batches (torch-native methods run a whole batch in one call).

Index convention: the crop (h, w, c) is flattened in C order, so pixel (i, j) channel k is
index (i·w + j)·c + k and a colour crop has a (3hw) × (3hw) Jacobian.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restorelab.denoise.base import Denoiser, check_sigma
from restorelab.jobs import Progress, run_job

__all__ = [
    "LINEAR_METHODS",
    "MAX_JACOBIAN_N",
    "Jacobian",
    "Spectrum",
    "BasisResult",
    "TraceSweep",
    "jacobian_method",
    "jacobian_job",
    "jacobian",
    "spectrum",
    "eigh_device",
    "basis_job",
    "trace_sweep_job",
    "adaptive_filter",
    "filter_kind",
    "check_crop",
    "crop_around",
    "evaluator",
    "piecewise_linear_net",
]

#: registry names of the methods that are linear maps of y (exact Jacobian from basis vectors)
LINEAR_METHODS = frozenset({"heat", "gaussian", "tikhonov"})
#: largest Jacobian side n = h·w·c computed by default, per channel count: 64×64 gray and 40×40 colour;
#: J alone is n² float64 values (184 MB at 4800) and its eigen-decomposition needs about three times that
MAX_JACOBIAN_N = {1: 64 * 64, 3: 40 * 40 * 3}
#: step of the finite differences on the [0, 1] intensity scale
FD_STEP = 1e-3
#: unit vectors per forward pass of the masked-linear network (larger batches use the 2 cores better)
MASKED_BATCH = 256
#: relative ‖J y − f(y)‖/‖f(y)‖ above which a masked-linear Jacobian is refused (float32 rounding is ~1e-7)
MASKED_EULER_TOL = 1e-4
#: central differences are replaced by forward ones when their estimated time exceeds this (s)
FD_CENTRAL_BUDGET_S = 20.0


# --------------------------------------------------------------------------- evaluation
def _as_crop(image: Any) -> np.ndarray:
    """(h, w, c) float64 copy of a (h, w) or (h, w, c) image with c in {1, 3}."""
    from restorelab.image import as_float_image

    a = as_float_image(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 4:
        raise ValueError("the Jacobian is computed on gray or RGB crops; drop the alpha channel first")
    if a.shape[2] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {a.shape[2]}")
    return np.array(a, dtype=np.float64)


def check_size(shape: Sequence[int], max_n: int | None = None) -> int:
    """n = h·w·c, or ValueError when J (n² float64) would exceed the limit ``max_n``
    (default :data:`MAX_JACOBIAN_N` for the crop's channel count)."""
    n = int(np.prod(shape))
    if max_n is None:
        max_n = MAX_JACOBIAN_N[3 if len(shape) > 2 and int(shape[2]) == 3 else 1]
    if n > max_n:
        mb = n * n * 8 / 2**20
        raise ValueError(
            f"a {'×'.join(str(int(s)) for s in shape)} crop has a {n}×{n} Jacobian ({mb:.0f} MB, plus about "
            f"3× that for its eigen-decomposition); the limit is n = {max_n} (64×64 gray, 40×40 colour): "
            "choose a smaller crop"
        )
    return n


def check_crop(image_shape: Sequence[int], crop: Sequence[int]) -> tuple[int, int, int, int]:
    """Validate ``crop = (top, left, height, width)`` against an image shape; returns it as ints."""
    try:
        top, left, ch, cw = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise ValueError(f"crop must be (top, left, height, width), got {crop!r}") from None
    h, w = int(image_shape[0]), int(image_shape[1])
    if ch < 1 or cw < 1:
        raise ValueError(f"crop size must be positive, got {ch}×{cw}")
    if top < 0 or left < 0 or top + ch > h or left + cw > w:
        raise ValueError(
            f"crop rows {top}..{top + ch - 1}, columns {left}..{left + cw - 1} lie outside the {h}×{w} image"
        )
    return top, left, ch, cw


def crop_around(
    image_shape: Sequence[int], pixel: tuple[int, int], size: int = 32
) -> tuple[int, int, int, int]:
    """A ``size``×``size`` crop (top, left, height, width) centred on ``pixel``, shifted inside the image
    (smaller where the image is)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    ch, cw = min(int(size), h), min(int(size), w)
    top = min(max(0, int(pixel[0]) - ch // 2), h - ch)
    left = min(max(0, int(pixel[1]) - cw // 2), w - cw)
    return top, left, ch, cw


def _residual_forward(net: Any, mc: int, channels: int) -> Callable[[Any], Any]:
    """x ↦ x − net(x) for a bias-free residual network with ``mc`` channels on ``channels``-channel
    input (a gray model runs per channel on colour; a colour model on gray replicates and averages)."""
    import torch

    def f(x: Any) -> Any:
        if mc == channels:
            return x - net(x)
        if mc == 1:
            return torch.cat([x[:, k : k + 1] - net(x[:, k : k + 1]) for k in range(channels)], dim=1)
        return (x.expand(-1, 3, -1, -1) - net(x.expand(-1, 3, -1, -1).contiguous())).mean(1, keepdim=True)

    return f


def _bf_network(den: Denoiser, channels: int) -> Any:
    """The float32 folded FastDenoiser of a :class:`~restorelab.denoise.bfcnn.BFCNNDenoiser`, or None."""
    from restorelab.denoise.bfcnn import BFCNNDenoiser, load_denoiser_model

    if not isinstance(den, BFCNNDenoiser):
        return None
    p = den.resolved(0.1)
    return load_denoiser_model(p["model"], den.device, channels=channels, precision="fp32", tile=0)


def _torch_forward(den: Denoiser, channels: int, sigma: float) -> tuple[Callable[[Any], Any], Any] | None:
    """A differentiable float32 x ↦ f(x) on (N, C, H, W) tensors and its device, or None.

    The learned bias-free denoiser runs its folded network in float32 (the same operator as
    inference, without ``inference_mode``); any other learned torch-native denoiser is used
    through ``_denoise_tensor`` if its output carries a gradient.
    """
    import torch

    if not (den.torch_native and den.family == "learned"):
        return None
    fast = _bf_network(den, channels)
    if fast is not None:
        return _residual_forward(fast.net, fast.channels, channels), fast.device
    probe = torch.zeros(1, channels, 4, 4, requires_grad=True)
    with torch.enable_grad():
        out = den._denoise_tensor(probe, sigma)  # noqa: SLF001
    if not getattr(out, "requires_grad", False):
        return None
    return (lambda x: den._denoise_tensor(x, sigma)), probe.device  # noqa: SLF001


def piecewise_linear_net(net: Any) -> bool:
    """Whether ``net`` is one of the project's bias-free ReLU networks in eval mode.

    True when every module is a :class:`~restorelab.models.nets.BFCNN` or
    :class:`~restorelab.models.nets.BFUNet` built from ``ConvBN`` blocks, 3×3 convolutions without
    bias and eval-mode BF batch norms: their forward passes use no nonlinearity but ReLU (the rest
    is convolution, per-channel scaling, average pooling, bilinear upsampling, reflect padding,
    concatenation and cropping, all linear), which is what the masked-linear Jacobian needs.
    """
    from torch import nn

    from restorelab.models.nets import BFCNN, BFBatchNorm2d, BFUNet, ConvBN

    if type(net) not in (BFCNN, BFUNet) or net.training:
        return False
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            if m.bias is not None:
                return False
        elif isinstance(m, BFBatchNorm2d):
            if m.training:
                return False
        elif type(m) not in (BFCNN, BFUNet, ConvBN, nn.Sequential, nn.ModuleList):
            return False
    return True


class _ReluMasks:
    """Records the ReLU masks of one forward pass, then replays the network with them (a linear map).

    A ``TorchFunctionMode`` sees every ``F.relu`` call of the network. In ``record`` it stores the
    mask 1[x > 0] of each pre-activation (ReLU's derivative, with autograd's convention 0 at 0)
    and applies it; in ``replay`` the k-th ReLU multiplies by the k-th recorded mask instead,
    broadcast over the batch, so the network becomes the linear map J(y) of the recorded y.
    """

    def __init__(self) -> None:
        import torch.nn.functional as F
        from torch.overrides import TorchFunctionMode

        masks: list[Any] = []
        state = {"replay": False, "k": 0}
        relu = F.relu

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN202
                kwargs = kwargs or {}
                if func is not relu:
                    return func(*args, **kwargs)
                x = args[0]
                if not state["replay"]:
                    if x.shape[0] != 1:
                        raise ValueError("ReLU masks are recorded on a batch of one image")
                    masks.append((x > 0).to(x.dtype))
                    return x * masks[-1]
                k = state["k"]
                if k >= len(masks) or tuple(masks[k].shape[1:]) != tuple(x.shape[1:]):
                    raise RuntimeError("the replayed network does not follow the recorded forward pass")
                state["k"] = k + 1
                return x.mul_(masks[k]) if kwargs.get("inplace", len(args) > 1 and args[1]) else x * masks[k]

        self.masks, self._state, self._mode = masks, state, Mode

    def record(self, f: Callable[[Any], Any], x: Any) -> Any:
        """f(x) for one image x, keeping the ReLU masks."""
        self.masks.clear()
        self._state.update(replay=False, k=0)
        with self._mode():
            return f(x)

    def replay(self, f: Callable[[Any], Any], v: Any) -> Any:
        """J(y) v for a batch v: f with every ReLU replaced by its recorded mask."""
        self._state.update(replay=True, k=0)
        with self._mode():
            out = f(v)
        if self._state["k"] != len(self.masks):
            raise RuntimeError("the replayed network does not follow the recorded forward pass")
        return out


def jacobian_method(den: Denoiser) -> str:
    """``masked-linear``, ``autograd``, ``exact-linear`` or ``finite-differences`` (module docstring).

    ``masked-linear`` is the choice for the bias-free networks; :func:`jacobian_job` still checks
    the loaded network (:func:`piecewise_linear_net`, Euler's identity) and uses ``autograd`` when
    either fails, and says so in the result's ``method``.
    """
    if den.name in LINEAR_METHODS:
        return "exact-linear"
    if den.torch_native and den.family == "learned":
        from restorelab.denoise.bfcnn import BFCNNDenoiser

        return "masked-linear" if isinstance(den, BFCNNDenoiser) else "autograd"
    return "finite-differences"


def evaluator(den: Denoiser, sigma: float, channels: int) -> Callable[[np.ndarray], np.ndarray]:
    """A batched f: (B, h, w, c) float64 → (B, h, w, c) float64, by the path the Jacobian uses.

    Every evaluation of one analysis (f(y), f(αy), finite differences) goes through the same
    path, so that differences compare like with like: the float32 network for autograd
    methods, one ``denoise_tensor`` call per batch for torch-native methods, and one
    ``den(image, σ)`` call per image otherwise.
    """
    import torch

    s = check_sigma(sigma)
    tf = _torch_forward(den, channels, s) if jacobian_method(den) in ("autograd", "masked-linear") else None
    if tf is not None:
        fwd, dev = tf

        def ev_t(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)).to(dev)
            with torch.no_grad():
                out = fwd(x)
            return out.float().cpu().numpy().transpose(0, 2, 3, 1).astype(np.float64)

        return ev_t
    if den.torch_native and s > 0:

        def ev_n(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32))
            out = den.denoise_tensor(x, s)
            return out.float().cpu().numpy().transpose(0, 2, 3, 1).astype(np.float64)

        return ev_n

    def ev_l(batch: np.ndarray) -> np.ndarray:
        out = [np.asarray(den(b.astype(np.float32), s), dtype=np.float64).reshape(b.shape) for b in batch]
        return np.stack(out)

    return ev_l


# ------------------------------------------------------------------------------ results
@dataclass
class Jacobian:
    """J[i, j] = ∂f_i/∂y_j at ``y`` (indices flatten (h, w, c) in C order)."""

    matrix: np.ndarray
    y: np.ndarray
    fy: np.ndarray
    sigma: float
    denoiser: str
    method: str
    detail: str
    seconds: float = 0.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.y.shape)  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def trace(self) -> float:
        """tr J: the effective dimensionality (number of directions kept)."""
        return float(np.trace(self.matrix))

    def as_image(self, v: np.ndarray) -> np.ndarray:
        """A length-n vector as an (h, w) or (h, w, 3) image."""
        h, w, c = self.shape
        a = np.asarray(v).reshape(h, w, c)
        return a[:, :, 0] if c == 1 else a

    def row(self, i: int, j: int, channel: int | None = None) -> np.ndarray:
        """The adaptive filter of output pixel (i, j): row of J as an image (colour: mean over channels)."""
        h, w, c = self.shape
        base = (i * w + j) * c
        if channel is not None:
            return self.as_image(self.matrix[base + channel])
        return self.as_image(self.matrix[base : base + c].mean(axis=0))


@dataclass
class Spectrum:
    """Eigen-decomposition of the symmetric part S = (J + Jᵀ)/2, eigenvalues in decreasing order."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray  # (n, n) columns
    asymmetry: float  # ‖J − Jᵀ‖_F / ‖J‖_F


@dataclass
class BasisResult:
    """What :func:`basis_job` returns: the adaptive basis of a crop.

    ``eigenvalues`` all n shrinkage factors (decreasing); ``basis`` the top-k eigenvectors as
    (k, h, w) or (k, h, w, 3) images (unit norm, sign fixed so the largest entry is positive);
    ``trace`` tr J; ``method`` how J was computed (``detail`` in words).
    """

    eigenvalues: np.ndarray
    basis: np.ndarray
    trace: float
    method: str
    detail: str
    asymmetry: float
    jacobian: Jacobian = field(repr=False)


@dataclass
class TraceSweep:
    """tr J(y_σ) against σ, y_σ = crop + σ z (one z for every σ) or the crop itself."""

    sigmas: np.ndarray
    traces: np.ndarray
    n: int
    method: str
    detail: str


# ----------------------------------------------------------------------------- Jacobian
def jacobian_job(
    den: Denoiser,
    y: Any,
    sigma: float,
    *,
    method: str = "auto",
    batch: int | None = None,
    fd_step: float = FD_STEP,
    fd_scheme: str = "auto",
    max_n: int | None = None,
) -> Generator[Progress, None, Jacobian]:
    """The Jacobian of ``den`` at the crop ``y`` ((h, w) or (h, w, 3), the denoiser's whole input).

    A job: yields one :class:`Progress` per batch of ``batch`` rows or columns (cancel between
    batches; default :data:`MASKED_BATCH` for ``masked-linear``, 64 otherwise) and returns a
    :class:`Jacobian`. ``method`` ``auto`` picks by :func:`jacobian_method`; ``autograd`` or
    ``finite-differences`` can be forced (a check of the others). ``fd_scheme``
    ``central``/``forward``/``auto`` (central unless its estimated time exceeds
    :data:`FD_CENTRAL_BUDGET_S`).
    """
    s = check_sigma(sigma)
    x = _as_crop(y)
    n = check_size(x.shape, max_n)
    h, w, c = x.shape
    m = jacobian_method(den) if method == "auto" else method
    methods = ("masked-linear", "autograd", "exact-linear", "finite-differences")
    if m not in methods:
        raise ValueError(f"method must be auto, {', '.join(methods)}; got {method!r}")
    if batch is not None and batch < 1:
        raise ValueError("batch must be >= 1")
    t0 = time.perf_counter()
    J = np.empty((n, n), np.float64)
    fallback = ""
    if m == "masked-linear":
        bm = MASKED_BATCH if batch is None else batch
        res = yield from _masked_linear_job(den, x, bm, J)
        if isinstance(res, str):
            fallback, m = res, "autograd"
        else:
            fy, detail = res
    batch = 64 if batch is None else batch
    nb = math.ceil(n / batch)
    if m == "autograd":
        import torch

        tf = _torch_forward(den, c, s)
        if tf is None:
            raise ValueError(f"{den.name} is not a differentiable torch model; use finite differences")
        fwd, dev = tf
        yt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None].to(dev)
        # torch order (c, h, w) → our (h, w, c)
        perm = np.arange(n).reshape(c, h, w).transpose(1, 2, 0).ravel()
        from torch.func import vjp, vmap

        with torch.enable_grad():
            out, pullback = vjp(fwd, yt)  # one forward pass; its graph serves every row
        fy = out[0].detach().float().cpu().numpy().transpose(1, 2, 0).astype(np.float64)
        for b in range(nb):
            ours = np.arange(b * batch, min(n, (b + 1) * batch))
            k = len(ours)
            cot = torch.zeros(k, n, device=out.device, dtype=out.dtype)
            cot[torch.arange(k), torch.from_numpy(perm[ours]).to(out.device)] = 1
            (rows,) = vmap(pullback)(cot.view(k, *out.shape))
            J[ours] = rows.detach().float().cpu().numpy().reshape(k, n)[:, perm]
            yield Progress(b + 1, nb, message=f"Jacobian: {ours[-1] + 1}/{n} rows (autograd)")
        detail = f"reverse-mode autograd, float32, {n} vector-Jacobian products in batches of {batch}" + (
            f" ({fallback})" if fallback else ""
        )
    elif m != "masked-linear":
        f = evaluator(den, s, c)
        flat = x.reshape(-1)
        if m == "exact-linear":
            fy = f(x[None])[0]
            scheme, denom = "linear", 1.0
        else:
            fy = f(x[None])[0]
            scheme = fd_scheme
            if scheme == "auto":
                t1 = time.perf_counter()
                f(np.stack([x] * min(batch, n)))
                per = (time.perf_counter() - t1) / min(batch, n)
                scheme = "central" if 2 * n * per <= FD_CENTRAL_BUDGET_S else "forward"
            if scheme not in ("central", "forward"):
                raise ValueError(f"fd_scheme must be auto, central or forward; got {fd_scheme!r}")
            denom = 2 * fd_step if scheme == "central" else fd_step
        for b in range(nb):
            cols = np.arange(b * batch, min(n, (b + 1) * batch))
            k = len(cols)
            if scheme == "linear":
                e = np.zeros((k, n))
                e[np.arange(k), cols] = 1.0
                J[:, cols] = f(e.reshape(k, h, w, c)).reshape(k, n).T
            else:
                plus = np.repeat(flat[None], k, axis=0)
                plus[np.arange(k), cols] += fd_step
                if scheme == "central":
                    minus = np.repeat(flat[None], k, axis=0)
                    minus[np.arange(k), cols] -= fd_step
                    both = f(np.concatenate([plus, minus]).reshape(2 * k, h, w, c)).reshape(2 * k, n)
                    J[:, cols] = ((both[:k] - both[k:]) / denom).T
                else:
                    J[:, cols] = ((f(plus.reshape(k, h, w, c)).reshape(k, n) - fy.reshape(1, n)) / denom).T
            yield Progress(b + 1, nb, message=f"Jacobian: {cols[-1] + 1}/{n} columns ({m})")
        detail = (
            f"exact: f applied to the {n} basis vectors (the method is linear)"
            if m == "exact-linear"
            else f"{scheme} finite differences, step {fd_step:g}, {n} columns in batches of {batch}"
        )
    return Jacobian(J, x, fy.reshape(x.shape), s, den.name, m, detail, time.perf_counter() - t0)


def _masked_linear_job(
    den: Denoiser, x: np.ndarray, batch: int, J: np.ndarray
) -> Generator[Progress, None, tuple[np.ndarray, str] | str]:
    """Fill J (n × n, our index order) with the columns of the masked-linear network at the crop x.

    Returns (f(x), detail), or a reason (str) when the network is not of that kind or the result
    fails Euler's identity ‖J x − f(x)‖ ≤ :data:`MASKED_EULER_TOL`·‖f(x)‖, for the caller to use
    autograd instead.
    """
    import torch

    h, w, c = x.shape
    n = x.size
    fast = _bf_network(den, c)
    if fast is None or not piecewise_linear_net(fast.net):
        return "the network is not a bias-free ReLU network of restorelab.models.nets"
    cl = torch.channels_last
    net = copy.deepcopy(fast.net).to(memory_format=cl)
    f = _residual_forward(net, fast.channels, c)
    dev = fast.device
    masks = _ReluMasks()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None].to(dev)
    # column j of ours is pixel (i, j') channel k: torch flat index (k·h + i)·w + j'
    perm = torch.from_numpy(np.arange(n).reshape(c, h, w).transpose(1, 2, 0).ravel()).to(dev)
    nb = math.ceil(n / batch)
    with torch.no_grad():
        fy = masks.record(f, xt.contiguous(memory_format=cl))[0].float().cpu().numpy().transpose(1, 2, 0)
        for b in range(nb):
            j0, j1 = b * batch, min(n, (b + 1) * batch)
            k = j1 - j0
            e = torch.zeros(k, n, device=dev)
            e[torch.arange(k, device=dev), perm[j0:j1]] = 1.0
            out = masks.replay(f, e.view(k, c, h, w).contiguous(memory_format=cl))
            J[:, j0:j1] = out.permute(0, 2, 3, 1).reshape(k, n).T.double().cpu().numpy()
            yield Progress(b + 1, nb, message=f"Jacobian: {j1}/{n} columns (masked-linear)")
    fy = fy.astype(np.float64)
    euler = float(np.linalg.norm(J @ x.reshape(-1) - fy.reshape(-1)))
    scale = float(np.linalg.norm(fy))
    if euler > MASKED_EULER_TOL * max(scale, 1e-12):
        return f"masked-linear refused: ‖Jy − f(y)‖/‖f(y)‖ = {euler / max(scale, 1e-12):.1e}"
    detail = (
        f"exact: the network with each ReLU replaced by its 0/1 mask at y (one forward pass) is J(y); "
        f"{n} columns as forward passes on unit vectors, float32, in batches of {batch}"
    )
    return fy, detail


def jacobian(den: Denoiser, y: Any, sigma: float, **kw: Any) -> Jacobian:
    """:func:`jacobian_job` run to the end."""
    return run_job(jacobian_job(den, y, sigma, **kw))


def spectrum(jac: Jacobian | np.ndarray, device: Any = None) -> Spectrum:
    """Eigenvalues (decreasing) and orthonormal eigenvectors of the symmetric part of J.

    J itself need not be symmetric (it is for an MMSE denoiser); its symmetric part
    S = (J + Jᵀ)/2 has the same quadratic form vᵀJv and a real orthonormal eigenbasis, which
    is the adaptive basis; the asymmetry ‖J − Jᵀ‖_F/‖J‖_F says how much this leaves out.

    ``device`` (a torch device, e.g. the denoiser's ``"cuda"``) runs the float64 symmetric
    eigensolver there (``torch.linalg.eigh``): for a 64×64 crop S is 4096×4096, whose O(n³)
    decomposition takes seconds on a few CPU cores and a fraction of that on a GPU. None: LAPACK
    through NumPy.
    """
    J = jac.matrix if isinstance(jac, Jacobian) else np.asarray(jac, dtype=np.float64)
    S = 0.5 * (J + J.T)
    if device is None:
        w, v = np.linalg.eigh(S)
    else:
        import torch

        from restorelab.device import resolve_device

        St = torch.from_numpy(np.ascontiguousarray(S, dtype=np.float64)).to(resolve_device(device))
        wt, vt = torch.linalg.eigh(St)
        w, v = wt.cpu().numpy(), vt.cpu().numpy()
    order = np.argsort(w)[::-1]
    nj = float(np.linalg.norm(J))
    asym = float(np.linalg.norm(J - J.T) / nj) if nj > 0 else 0.0
    return Spectrum(w[order], v[:, order], asym)


def eigh_device(denoiser: Denoiser) -> Any:
    """The CUDA device the denoiser runs on (where :func:`spectrum` should decompose), else None.

    A denoiser set to ``"auto"`` resolves to the GPU when one is present; on the CPU the answer
    is None, so the decomposition stays with LAPACK.
    """
    from restorelab.device import resolve_device

    try:
        dev = resolve_device(getattr(denoiser, "device", "cpu"))
    except (RuntimeError, ValueError):
        return None
    return dev if dev.type == "cuda" else None


def basis_job(
    denoiser: Denoiser, crop: Any, sigma: float, k: int = 16, **kw: Any
) -> Generator[Progress, None, BasisResult]:
    """The adaptive basis of ``crop`` (the denoiser's input, e.g. the noisy pixels under the view).

    Computes J (:func:`jacobian_job`, its progress events), then the eigen-decomposition of
    its symmetric part; returns the ``k`` leading eigenvectors as images.
    """
    jac = yield from jacobian_job(denoiser, crop, sigma, **kw)
    yield Progress(1, 1, message="eigen-decomposition")
    sp = spectrum(jac, device=eigh_device(denoiser))
    k = max(1, min(int(k), jac.n))
    vecs = sp.eigenvectors[:, :k].T.copy()
    sign = np.sign(vecs[np.arange(k), np.argmax(np.abs(vecs), axis=1)])
    vecs *= np.where(sign == 0, 1.0, sign)[:, None]
    basis = np.stack([jac.as_image(v) for v in vecs])
    return BasisResult(sp.eigenvalues, basis, jac.trace, jac.method, jac.detail, sp.asymmetry, jac)


def _trace_exact(den: Denoiser, y: np.ndarray, s: float, batch: int) -> Generator[Progress, None, float]:
    jac = yield from jacobian_job(den, y, s, batch=batch)
    return jac.trace


def _trace_hutchinson(
    den: Denoiser, y: np.ndarray, s: float, probes: int, rng: np.random.Generator
) -> Generator[Progress, None, float]:
    """tr J ≈ mean of zᵀ J z over Rademacher z (Hutchinson 1990): one VJP or one central FD per probe."""
    h, w, c = y.shape
    n = y.size
    z = rng.choice([-1.0, 1.0], size=(probes, h, w, c))
    if jacobian_method(den) in ("autograd", "masked-linear"):
        import torch

        tf = _torch_forward(den, c, s)
        assert tf is not None
        fwd, dev = tf
        yt = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1), dtype=np.float32))[None].to(dev)
        with torch.enable_grad():
            yb = yt.expand(probes, -1, -1, -1).clone().requires_grad_(True)
            out = fwd(yb)
            zt = torch.from_numpy(z.transpose(0, 3, 1, 2).astype(np.float32)).to(out.device)
            (g,) = torch.autograd.grad(out, yb, zt)
        est = (g.double().cpu() * zt.double().cpu()).sum(dim=(1, 2, 3)).numpy()
    else:
        f = evaluator(den, s, c)
        both = f(np.concatenate([y[None] + FD_STEP * z, y[None] - FD_STEP * z]))
        est = ((both[:probes] - both[probes:]) * z).reshape(probes, n).sum(1) / (2 * FD_STEP)
    yield Progress(1, 1, message="trace (Hutchinson)")
    return float(np.mean(est))


def trace_sweep_job(
    denoiser: Denoiser,
    crop: Any,
    sigmas: Sequence[float],
    *,
    add_noise: bool = True,
    seed: int = 0,
    probes: int = 0,
    batch: int = 64,
) -> Generator[Progress, None, TraceSweep]:
    """tr J against σ: the effective dimensionality falls as the noise grows (Kadkhodaie et al. 2024).

    With ``add_noise`` the crop is taken as clean and J is evaluated at y_σ = crop + σz (one
    seeded z for every σ); otherwise at the crop itself. ``probes = 0`` computes tr J exactly
    (the full Jacobian at each σ); ``probes > 0`` uses Hutchinson's estimator with that many
    Rademacher probes (fast, unbiased, with a standard error of order ‖S‖_F·√(2/probes)).
    """
    x = _as_crop(crop)
    check_size(x.shape)
    sig = [check_sigma(v) for v in sigmas]
    if not sig:
        raise ValueError("give at least one sigma")
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    rng = np.random.default_rng(seed + 1)
    traces = []
    for i, s in enumerate(sig):
        y = x + s * noise if add_noise else x
        inner = (
            _trace_exact(denoiser, y, s, batch)
            if probes <= 0
            else _trace_hutchinson(denoiser, y, s, probes, rng)
        )
        while True:
            try:
                ev = next(inner)
            except StopIteration as stop:
                traces.append(stop.value)
                break
            yield Progress(i, len(sig), sigma=s, message=f"σ = {s * 255:.3g}/255: {ev.message}")
        yield Progress(
            i + 1,
            len(sig),
            sigma=s,
            message=f"tr J = {traces[-1]:.2f} at σ = {s * 255:.3g}/255",
            data={"sigma": s, "trace": traces[-1]},
        )
    m = jacobian_method(denoiser)
    detail = "exact (full Jacobian)" if probes <= 0 else f"Hutchinson estimate, {probes} Rademacher probes"
    return TraceSweep(np.array(sig), np.array(traces), int(x.size), m, detail)


# ------------------------------------------------------------------------- one pixel
def filter_kind(denoiser: Denoiser) -> str:
    """What :func:`adaptive_filter` returns for this denoiser, in words (for a label)."""
    if jacobian_method(denoiser) in ("autograd", "masked-linear"):
        return "row of J (autograd): the weights the denoiser gives each pixel for this output pixel"
    if jacobian_method(denoiser) == "exact-linear":
        return "column of J (exact): the response to this pixel; equals the row for a symmetric filter"
    return (
        "column of J (finite differences): the response to a small change of this pixel; "
        "equals the filter (row) when J is symmetric"
    )


def adaptive_filter(
    denoiser: Denoiser,
    image: Any,
    sigma: float,
    pixel: tuple[int, int],
    crop: tuple[int, int, int, int],
    *,
    channel: int | None = None,
) -> np.ndarray:
    """The adaptive filter at ``pixel`` (image row, column), over ``crop = (top, left, height, width)``.

    The denoiser runs on the crop alone (its whole input). For torch models the result is the
    exact row of J, one vector–Jacobian product; for other methods it is the column of J
    (the response to perturbing ``pixel``: one central finite difference, two evaluations, or
    one exact evaluation for linear methods), which is the row when J is symmetric — see
    :func:`filter_kind`. Returns (height, width) for gray, (height, width, 3) for colour
    (the mean over output channels, or output ``channel``).
    """
    import torch

    s = check_sigma(sigma)
    img = _as_crop(image)
    top, left, ch, cw = check_crop(img.shape, crop)
    r, q = int(pixel[0]) - top, int(pixel[1]) - left
    if not (0 <= r < ch and 0 <= q < cw):
        raise ValueError(f"pixel {tuple(pixel)} is outside the crop {tuple(crop)}")
    x = img[top : top + ch, left : left + cw]
    c = x.shape[2]
    if channel is not None and not 0 <= channel < c:
        raise ValueError(f"channel must be in 0..{c - 1}")
    wsel = np.zeros(x.shape)
    if channel is None:
        wsel[r, q, :] = 1.0 / c
    else:
        wsel[r, q, channel] = 1.0
    m = jacobian_method(denoiser)
    if m in ("autograd", "masked-linear"):
        tf = _torch_forward(denoiser, c, s)
        assert tf is not None
        fwd, dev = tf
        yt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None].to(dev)
        with torch.enable_grad():
            yb = yt.clone().requires_grad_(True)
            out = fwd(yb)
            g = torch.from_numpy(wsel.transpose(2, 0, 1)[None].astype(np.float32)).to(out.device)
            (grad,) = torch.autograd.grad(out, yb, g)
        res = grad[0].double().cpu().numpy().transpose(1, 2, 0)
    else:
        f = evaluator(denoiser, s, c)
        if m == "exact-linear":
            res = f(wsel[None])[0]
        else:
            both = f(np.stack([x + FD_STEP * wsel, x - FD_STEP * wsel]))
            res = (both[0] - both[1]) / (2 * FD_STEP)
    return res[:, :, 0] if c == 1 else res

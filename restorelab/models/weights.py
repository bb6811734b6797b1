"""Save and load bias-free networks as safetensors, with validation (nothing is unpickled).

The safetensors header's metadata holds the configuration (``format``, ``arch``,
``channels``, ``depth``, ``width``, σ range, steps, ...). Loading checks every header value
against its declared range (:data:`restorelab.models.nets.CONFIG_PARAMS`,
:data:`HEADER_PARAMS`) and the network's size (:func:`restorelab.models.nets.parameter_count`
against :data:`~restorelab.models.nets.MAX_PARAMETERS`) *before* the network is built, so a
header asking for a huge width or depth costs nothing; then it rebuilds the network and
checks every tensor name, shape (from the header, before the tensor is read) and dtype; a
wrong, truncated or foreign file raises ``ValueError`` naming the file. Saving goes through
the project's one atomic writer (:func:`restorelab.safety.atomic_write_bytes`).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import torch

from restorelab.models.nets import ARCHS, MAX_PARAMETERS, build_model, check_config
from restorelab.params import Param, ParamError

__all__ = ["FORMAT", "HEADER_PARAMS", "save_model", "load_model", "read_metadata", "check_header",
           "read_checked_state"]

FORMAT = "restorelab-bfnet-1"

#: declared ranges of the descriptive header values (checked when present); σ on the 0..255 scale
HEADER_PARAMS: tuple[Param, ...] = (
    Param("sigma_min", float, 0.0, lo=0.0, hi=255.0, label="Smallest training σ (0..255)"),
    Param("sigma_max", float, 55.0, lo=0.0, hi=255.0, label="Largest training σ (0..255)"),
    Param("steps", int, 0, lo=0, hi=10**9, label="Training steps"),
    Param("batch", int, 1, lo=1, hi=1 << 16, label="Batch size"),
    Param("patch", int, 1, lo=1, hi=1 << 16, label="Patch side (pixels)"),
    Param("seed", int, 0, lo=0, hi=2**63 - 1, label="Random seed"),
)
#: largest model file read: the largest network's float32 state plus safetensors' own
#: header limit (100 MB)
MAX_FILE_BYTES = 4 * MAX_PARAMETERS + (100 << 20)


def save_model(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s state (float32, unfolded) and its config to a safetensors file,
    atomically (:func:`restorelab.safety.atomic_write_bytes`)."""
    from safetensors.torch import save

    from restorelab.safety import atomic_write_bytes

    if getattr(model, "folded", False):
        raise ValueError("save the unfolded model (folding is done at load time)")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    md: dict[str, str] = {"format": FORMAT}
    md.update({k: str(v) for k, v in model.config().items()})  # type: ignore[operator]
    for k, v in (meta or {}).items():
        md[str(k)] = v if isinstance(v, str) else json.dumps(v)
    return atomic_write_bytes(p, save(state, metadata=md))


def _check_file(p: Path) -> None:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {p}") from None
    except OSError as e:
        raise ValueError(f"{p}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p}: not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{p}: {st.st_size / 2**20:.0f} MB is larger than any model restorelab builds "
                         f"(at most {MAX_FILE_BYTES / 2**20:.0f} MB)")


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header metadata of a model file (ValueError if it is not a restorelab model)."""
    from safetensors import safe_open

    p = Path(path)
    _check_file(p)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            md = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{p}: not a readable safetensors file ({e})") from None
    if md.get("format") != FORMAT:
        raise ValueError(
            f"{p}: not a restorelab bias-free model (format {md.get('format')!r}, expected {FORMAT!r})"
        )
    return md


def check_header(md: dict[str, str], what: str = "model") -> tuple[str, int, int, int]:
    """``(arch, channels, depth, width)`` from a header, every value checked against its
    declared range and the network's size against ``MAX_PARAMETERS`` before anything is
    built; ``ValueError`` starting with ``what`` otherwise."""
    try:
        arch = md["arch"]
        raw = {k: md[k] for k in ("channels", "depth", "width")}
    except KeyError as e:
        raise ValueError(f"{what}: missing model configuration {e} in the header") from None
    if arch not in ARCHS:
        raise ValueError(f"{what}: unknown architecture {str(arch)[:40]!r}")
    vals: dict[str, int] = {}
    for k, v in raw.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: header value {k} = {str(v)[:40]!r} is not a number") from None
        if not f.is_integer():
            raise ValueError(f"{what}: header value {k} = {str(v)[:40]} is not an integer")
        vals[k] = int(f)
    try:
        channels, depth, width = check_config(arch, vals["channels"], vals["depth"], vals["width"])
    except ValueError as e:
        raise ValueError(f"{what}: bad configuration in the header: {e}") from None
    for prm in HEADER_PARAMS:
        if prm.name in md:
            try:
                prm.parse(md[prm.name])
            except (ParamError, OverflowError) as e:
                raise ValueError(f"{what}: header value {str(e)[:200]}") from None
    return arch, channels, depth, width


def load_model(path: str | os.PathLike, device: Any = "cpu") -> tuple[torch.nn.Module, dict[str, str]]:
    """Load a network saved by :func:`save_model`, in eval mode, with its metadata.

    Checks names, shapes and dtypes of every tensor and that all values are finite.
    """
    p = Path(path)
    md = read_metadata(p)
    arch, channels, depth, width = check_header(md, str(p))
    model = build_model(arch, channels, depth, width)
    what = f"a {arch} (depth {depth}, width {width}, {channels} ch)"
    state = read_checked_state(p, model.state_dict(), what)
    model.load_state_dict(state)
    model.eval()
    return model.to(device), md


def read_checked_state(
    path: str | os.PathLike, expected: dict[str, torch.Tensor], what: str
) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked against ``expected`` (a fresh network's state).

    Every name must match (none missing, none extra), every tensor must be float32 of the
    expected shape and finite, and every BF-norm running SD positive; anything else, or a
    file that cannot be read, raises ``ValueError`` naming the file and ``what`` it should hold.
    """
    from safetensors import safe_open

    p = Path(path)
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            keys = set(f.keys())
            missing = sorted(set(expected) - keys)
            extra = sorted(keys - set(expected))
            if missing or extra:
                raise ValueError(
                    f"{p}: tensor names do not match {what}: "
                    f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]}"
                )
            for k, ref in expected.items():
                shape = tuple(f.get_slice(k).get_shape())
                if shape != tuple(ref.shape):  # from the header, before the tensor is read
                    raise ValueError(f"{p}: tensor {k} has shape {shape}, expected {tuple(ref.shape)}")
                t = f.get_tensor(k)
                if t.dtype != torch.float32:
                    raise ValueError(f"{p}: tensor {k} has dtype {t.dtype}, expected float32")
                if tuple(t.shape) != tuple(ref.shape):
                    raise ValueError(
                        f"{p}: tensor {k} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}"
                    )
                if not torch.isfinite(t).all():
                    raise ValueError(f"{p}: tensor {k} holds NaN or infinite values")
                state[k] = t
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"{p}: corrupt model file ({type(e).__name__}: {e})") from None
    if any(k.endswith("running_sd") and bool((v <= 0).any()) for k, v in state.items()):
        raise ValueError(f"{p}: a running standard deviation is not positive")
    return state

"""Save and load bias-free networks as safetensors, with validation (nothing is unpickled).

The safetensors header's metadata holds the configuration (``format``, ``arch``,
``channels``, ``depth``, ``width``, σ range, steps, ...). Loading rebuilds the network
from that metadata and checks every tensor name, shape and dtype against it; a wrong,
truncated or foreign file raises ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from restorelab.models.nets import ARCHS, build_model

__all__ = ["FORMAT", "save_model", "load_model", "read_metadata", "read_checked_state"]

FORMAT = "restorelab-bfnet-1"


def save_model(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s state (float32, unfolded) and its config to a safetensors file (atomic)."""
    from safetensors.torch import save_file

    if getattr(model, "folded", False):
        raise ValueError("save the unfolded model (folding is done at load time)")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    md: dict[str, str] = {"format": FORMAT}
    md.update({k: str(v) for k, v in model.config().items()})  # type: ignore[operator]
    for k, v in (meta or {}).items():
        md[str(k)] = v if isinstance(v, str) else json.dumps(v)
    tmp = p.with_name(p.name + ".tmp")
    save_file(state, str(tmp), metadata=md)
    os.replace(tmp, p)
    return p


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header metadata of a model file (ValueError if it is not a restorelab model)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
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


def load_model(path: str | os.PathLike, device: Any = "cpu") -> tuple[torch.nn.Module, dict[str, str]]:
    """Load a network saved by :func:`save_model`, in eval mode, with its metadata.

    Checks names, shapes and dtypes of every tensor and that all values are finite.
    """
    p = Path(path)
    md = read_metadata(p)
    try:
        arch = md["arch"]
        channels, depth, width = int(md["channels"]), int(md["depth"]), int(md["width"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{p}: missing or bad model configuration in the header ({e})") from None
    if arch not in ARCHS:
        raise ValueError(f"{p}: unknown architecture {arch!r}")
    try:
        model = build_model(arch, channels, depth, width)
    except ValueError as e:
        raise ValueError(f"{p}: bad configuration: {e}") from None
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

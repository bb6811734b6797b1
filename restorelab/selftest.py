"""Headless self-test of an installation or a frozen bundle.

``restorelab selftest`` (and ``restorelab gui --self-test``, whose window code calls
:func:`run`) checks, without a display: the built-in sample opens; one denoise; one seamless
clone (Pérez et al. 2003); a 10-step run of the implicit-prior sampler (Kadkhodaie &
Simoncelli 2021, Algorithm 1); a session save/reload round trip. It passes only when every
part ran and passed: a core module that cannot be imported fails its part, and a part that
cannot run because an earlier one failed is reported as not run and also fails the test.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["run"]


class _NotRun(Exception):
    """A part could not run because a part it needs failed (that failure is already reported)."""


def _sample_image() -> np.ndarray:
    from restorelab.io import load_image
    from restorelab.resources import sample_path

    p = sample_path()
    if not p.is_file():
        raise RuntimeError(f"the built-in sample {p} is missing from the installation")
    img = load_image(p)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    h, w = img.shape[:2]
    c = min(96, h, w)
    crop = np.ascontiguousarray(img[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c])
    if not np.isfinite(crop).all():
        raise RuntimeError("the sample decoded to non-finite values")
    return crop


def _denoiser() -> Any:
    """The shipped learned denoiser (its weights are part of the installation), else the first
    of the classical ones; a registered denoiser that does not run is a failure."""
    from restorelab import denoise

    names = denoise.names()
    if not names:
        raise RuntimeError("no denoiser is registered")
    name = next((n for n in ("bfcnn", "tv", "wavelet", "nlm") if n in names), names[0])
    d = denoise.get(name, device="cpu")
    d(np.zeros((8, 8), np.float32), 0.1)  # e.g. bfcnn without its weights fails here
    return d


def run(image: str | None = None, *, out: TextIO | None = None) -> int:
    """Run the self-test, print one line per part, return 0 on success and 1 on a failure.

    ``image`` replaces the built-in sample when given.
    """
    o = out or sys.stdout
    state: dict[str, Any] = {}
    failures = 0
    not_run = 0

    def part(name: str, fn: Callable[[], str]) -> None:
        nonlocal failures, not_run
        t0 = time.perf_counter()
        try:
            msg = fn()
        except _NotRun as e:
            not_run += 1
            print(f"FAIL {name}: not run ({e})", file=o)
            return
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", file=o)
            traceback.print_exc(file=o)
            return
        print(f"ok   {name} ({time.perf_counter() - t0:.2f} s){': ' + msg if msg else ''}", file=o)

    def load() -> str:
        if image is not None:
            from restorelab.io import load_image

            img = load_image(image)
            state["img"] = img[..., :3] if img.ndim == 3 else img
            return f"{image} {state['img'].shape}"
        state["img"] = _sample_image()
        return f"sample crop {state['img'].shape}"

    def den() -> str:
        if "img" not in state:
            raise _NotRun("no image: opening it failed")
        from restorelab.noise import add_gaussian_noise

        d = _denoiser()
        state["den"] = d
        x = state["img"]
        y = add_gaussian_noise(x, 25 / 255, seed=0)
        xh = d(y, 25 / 255)
        if xh.shape != y.shape or not np.isfinite(xh).all():
            raise RuntimeError(f"denoiser {d.name} returned a bad image {xh.shape}")
        e_in, e_out = float(np.mean((y - x) ** 2)), float(np.mean((xh - x) ** 2))
        if not e_out < e_in:
            raise RuntimeError(f"denoiser {d.name} did not reduce the error ({e_in:.5f} -> {e_out:.5f})")
        return f"{d.name}: MSE {e_in:.5f} -> {e_out:.5f}"

    def clone() -> str:
        if "img" not in state:
            raise _NotRun("no image: opening it failed")
        from restorelab.edit import seamless_clone

        x = state["img"]
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy - h / 2) / (h / 5)) ** 2 + ((xx - w / 2) / (w / 5)) ** 2 <= 1
        dst = np.ascontiguousarray(x[::-1, ::-1])
        dy, dx = h // 8, -(w // 8)
        outc = seamless_clone(x, dst, mask, offset=(dy, dx), mode="mixed")
        if outc.shape != dst.shape or not np.isfinite(outc).all():
            raise RuntimeError("seamless_clone returned a bad image")
        placed = np.zeros_like(mask)
        placed[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
            mask[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
        keep = ~_dilate(placed)
        if not np.allclose(outc[keep], dst[keep], atol=1e-5):
            raise RuntimeError("seamless_clone changed pixels outside the placed region")
        if np.allclose(outc[placed], dst[placed], atol=1e-3):
            raise RuntimeError("seamless_clone left the placed region unchanged")
        return f"mixed gradients, {int(mask.sum())} px region"

    def sampler() -> str:
        from restorelab.jobs import run_job
        from restorelab.prior.sampler import sample_job

        d = state.get("den") or _denoiser()
        seen: list[float] = []
        res = run_job(sample_job(d, shape=(32, 32), seed=0, max_iter=10, device="cpu", preview_every=5),
                      on_progress=lambda ev: seen.append(float(ev.sigma)) if ev.sigma is not None else None)
        if not seen:
            raise RuntimeError("the sampler reported no σ_t")
        arr = np.asarray(res.samples[0])
        if not np.isfinite(arr).all():
            raise RuntimeError("the sampler returned non-finite values")
        return f"{len(seen)} steps, σ_t {seen[0]:.3f} -> {seen[-1]:.3f}"

    def session() -> str:
        if "img" not in state:
            raise _NotRun("no image: opening it failed")
        from restorelab.session import MaskLayer, MethodChoice, Session, load_session, save_session

        x = state["img"]
        m = np.zeros(x.shape[:2], bool)
        m[5:20, 7:30] = True
        s = Session(image=x, masks=[MaskLayer("m", m)], methods=[MethodChoice("denoise", "tv", {"lam": 0.1})])
        with tempfile.TemporaryDirectory() as td:
            p = save_session(Path(td) / "selftest.rlsession", s)
            t = load_session(p)
        if not (np.array_equal(t.image, x) and np.array_equal(t.masks[0].mask, m) and t.methods == s.methods):
            raise RuntimeError("the session did not reopen to the same pixels, mask and parameters")
        return "save/reload round trip"

    print("restorelab self-test", file=o)
    part("open sample", load)
    part("denoise", den)
    part("seamless clone", clone)
    part("sampler (10 steps)", sampler)
    part("session file", session)
    if failures == 0 and not_run == 0:
        print("self-test passed", file=o)
        return 0
    print(f"self-test FAILED ({failures} part(s) failed, {not_run} not run)", file=o)
    return 1


def _dilate(m: np.ndarray, r: int = 2) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(m, iterations=r)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))

"""Session files for the window: the document and panel state ↔ :class:`restorelab.session.Session`.

Nothing is computed here: :func:`collect_session` gathers the working image, the painted
mask, the clone placements (with their source masks), the chosen methods and parameters of
the side panels, seeds and the last sampler result into a core ``Session``;
:func:`build_document` turns a loaded ``Session`` back into a :class:`Document` (without
touching the window), and :func:`apply_panels` sets the panel widgets back. The window
saves and reads the files with ``restorelab.session.save_session`` / ``load_session``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from restorelab.gui.document import Document
from restorelab.session import (
    CLONE_MODES,
    ClonePlacement,
    MaskLayer,
    MethodChoice,
    SamplerResult,
    Session,
    file_sha256,
)

PAINT_MASK = "paint"


def session_id(doc: Document) -> str:
    """The document's stable session id (one autosave file per document)."""
    sid = doc.meta.get("session_id")
    if not isinstance(sid, str):
        sid = uuid.uuid4().hex
        doc.meta["session_id"] = sid
    return sid


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _image_sha(p: Path) -> str | None:
    """SHA-256 of the image file, cached on (path, size, mtime) — autosaves call this often."""
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _SHA_CACHE:
            if len(_SHA_CACHE) > 64:
                _SHA_CACHE.clear()
            _SHA_CACHE[key] = file_sha256(p)
        return _SHA_CACHE[key]
    except OSError:
        return None


def _sampler_result(res: Any, info: dict[str, Any]) -> SamplerResult | None:
    """The core sampler's ``SampleResult`` (or a session ``SamplerResult``) as session data."""
    if res is None:
        return None
    if isinstance(res, SamplerResult):
        return res
    samples = getattr(res, "samples", None)
    stack = None
    if samples is not None and len(samples):
        stack = np.stack([np.asarray(s, np.float32) for s in samples])
    log = [r for r in list(getattr(res, "log", []) or []) if np.isfinite(r[1]) and np.isfinite(r[2])]
    params = dict(getattr(res, "params", {}) or info.get("params", {}) or {})
    params = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str)) or v is None}
    seed = params.get("seed")
    return SamplerResult(
        method=str(info.get("task", "sample")),
        samples=stack,
        mean=None if getattr(res, "mean", None) is None else np.asarray(res.mean, np.float32),
        std=None if getattr(res, "std", None) is None else np.asarray(res.std, np.float32),
        sigma_log=[float(r[1]) for r in log],
        h_log=[float(r[2]) for r in log],
        params={**params, "denoiser": info.get("denoiser"), "origin": info.get("origin")},
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def _plain_params(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = list(v)
    return out


def collect_session(win: Any) -> Session:
    """The window's current work as a core ``Session`` (copies, nothing is modified)."""
    doc: Document | None = win.doc
    if doc is None:
        raise ValueError("no document to save")
    image_path = sha = None
    if doc.path is not None:
        p = Path(doc.path)
        image_path = str(p.resolve()) if p.exists() else str(p)
        sha = _image_sha(p)
    s = Session(image_path=image_path, image_sha256=sha, image=doc.image.copy(), session_id=session_id(doc))
    s.masks.append(MaskLayer(PAINT_MASK, doc.mask.copy(), visible=bool(win.a_show_mask.isChecked())))
    for c in doc.meta.get("clones", []):
        mode = c.get("mode", "import")
        s.clones.append(
            ClonePlacement(
                source_id=str(c.get("source") or "this image"),
                mask=np.asarray(c["mask"]),
                offset=(int(c["offset"][0]), int(c["offset"][1])),
                mode=mode if mode in CLONE_MODES else "import",
                params={"solver": c.get("solver"), "mode": mode},
            )
        )
    panel = win.denoise_panel
    if panel.method_name() is not None:
        s.methods.append(
            MethodChoice("denoise", panel.method_name(), _plain_params(panel.values()), panel.sigma_value())
        )
    sv = win.sampler_view
    task = sv.task.currentData() if hasattr(sv, "task") else None
    if task is not None and sv.form is not None:
        vals = _plain_params(sv.form.values())
        seed = vals.get("seed")
        den = sv.denoiser.currentData() if hasattr(sv, "denoiser") else None
        s.methods.append(
            MethodChoice(
                "sampler",
                str(task),
                vals,
                seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            )
        )
        s.extra["sampler"] = {"size": int(sv.size.value()), "denoiser": den}
    last = doc.meta.get("last_denoise")
    if isinstance(last, dict):
        s.history.append(
            MethodChoice("denoise", str(last["method"]), _plain_params(last.get("params", {})),
                         float(last["sigma"]))
        )
    res = _sampler_result(doc.meta.get("last_sampler_result"), dict(doc.meta.get("last_sampler", {}) or {}))
    if res is not None:
        s.sampler_results.append(res)
    s.extra.update(
        {
            "bit_depth": doc.bit_depth,
            "in_mask": bool(panel.in_mask.isChecked()),
            "live": bool(panel.live.isChecked()),
            "saved_path": None if doc.saved_path is None else str(doc.saved_path),
        }
    )
    return s


def build_document(s: Session) -> Document:
    """A new :class:`Document` holding the session's pixels, mask, clones and results.

    Raises ``ValueError`` when the session has no pixels and its image file cannot be read.
    """
    image = s.image
    original = None
    if s.image_path and not s.image_missing:
        try:
            from restorelab.io import load_image

            original = load_image(s.image_path)
        except Exception:  # noqa: BLE001 - the session's own pixels are enough
            original = None
    if image is None:
        if original is None:
            raise ValueError(f"the session holds no pixels and its image {s.image_path} cannot be read")
        image = original
    bits = s.extra.get("bit_depth")
    doc = Document(image, s.image_path, bit_depth=bits if isinstance(bits, int) else None)
    if original is not None and not s.image_changed and np.shape(original) == doc.image.shape:
        doc.original = np.asarray(original, np.float32)
    for m in s.masks:
        if m.name == PAINT_MASK and m.mask.shape == doc.image.shape[:2]:
            a = m.mask
            if a.dtype == bool:
                a = a.astype(np.uint8) * 255
            elif a.dtype != np.uint8:
                a = np.clip(np.asarray(a, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
            doc.mask = np.ascontiguousarray(a)
    doc.meta["session_id"] = s.session_id
    if s.clones:
        doc.meta["clones"] = [
            {
                "offset": list(c.offset),
                "mode": c.params.get("mode", c.mode),
                "solver": c.params.get("solver"),
                "source": c.source_id,
                "mask": c.mask,
            }
            for c in s.clones
        ]
    if s.history:
        h = s.history[-1]
        doc.meta["last_denoise"] = {"method": h.name, "sigma": h.sigma, "params": dict(h.params)}
    if s.sampler_results:
        r = s.sampler_results[-1]
        doc.meta["last_sampler_result"] = r
        doc.meta["last_sampler"] = {
            "task": r.method,
            "denoiser": r.params.get("denoiser"),
            "params": {k: v for k, v in r.params.items() if k not in ("denoiser", "origin")},
            "origin": r.params.get("origin"),
        }
    return doc


def apply_panels(win: Any, s: Session) -> list[str]:
    """Set the side panels back to the session's methods and parameters.

    Returns readable notes for what could not be restored (a method no longer registered).
    """
    notes: list[str] = []
    panel = win.denoise_panel
    for m in s.methods:
        if m.kind == "denoise":
            try:
                panel.select(m.name)
            except KeyError:
                notes.append(f"denoiser {m.name!r} is not available")
                continue
            if m.sigma is not None:
                panel.sigma.setValue(float(m.sigma) * 255.0)
            if panel.form is not None:
                panel.form.set_values(dict(m.params))
        elif m.kind == "sampler":
            sv = win.sampler_view
            i = sv.task.findData(m.name)
            if i < 0:
                notes.append(f"sampler task {m.name!r} is not available")
                continue
            sv.task.setCurrentIndex(i)
            if sv.form is not None:
                sv.form.set_values(dict(m.params))
            extra = s.extra.get("sampler") or {}
            if isinstance(extra.get("size"), int):
                sv.size.setValue(extra["size"])
            den = extra.get("denoiser")
            if den is not None and hasattr(sv, "denoiser"):
                j = sv.denoiser.findData(den)
                if j >= 0:
                    sv.denoiser.setCurrentIndex(j)
    if isinstance(s.extra.get("in_mask"), bool):
        panel.in_mask.setChecked(s.extra["in_mask"])
    if isinstance(s.extra.get("live"), bool):
        panel.live.setChecked(s.extra["live"])
    return notes


def show_sampler_result(win: Any, doc: Document) -> bool:
    """Put a restored sampler result back in the sampler view: the σ_t / h_t curves, the
    samples, their mean and the uncertainty map (no trajectory frames: they are not saved)."""
    r = doc.meta.get("last_sampler_result")
    info = dict(doc.meta.get("last_sampler", {}) or {})
    if not isinstance(r, SamplerResult) or r.mean is None or r.std is None:
        return False
    sv = win.sampler_view
    n = min(len(r.sigma_log), len(r.h_log)) if r.h_log else len(r.sigma_log)
    sv.t[:] = [float(t) for t in range(1, n + 1)]
    sv.sig[:] = [max(float(v), 1e-12) for v in r.sigma_log[:n]]
    sv.h[:] = [max(float(v), 1e-12) for v in r.h_log[:n]] if r.h_log else [float("nan")] * n
    if sv.t:
        sv.sigma_curve.setData(sv.t, sv.sig)
        if r.h_log:
            sv.h_curve.setData(sv.t, sv.h)
        sv._grow_ranges()  # noqa: SLF001 - the view's own range logic
    origin = info.get("origin")
    if isinstance(origin, list) and len(origin) == 2 and all(isinstance(v, int) for v in origin):
        sv._origin, sv._crop_shape = (origin[0], origin[1]), tuple(r.mean.shape)  # noqa: SLF001
    else:
        sv._origin, sv._crop_shape = (0, 0), None  # noqa: SLF001
    win.meta_pending = {"task": info.get("task", r.method), "denoiser": info.get("denoiser"),
                        "params": dict(info.get("params", {}) or {})}
    samples = [] if r.samples is None else [np.asarray(x) for x in r.samples]
    log = [(t + 1, r.sigma_log[t], r.h_log[t]) for t in range(n)] if r.h_log else []
    params = dict(win.meta_pending["params"])
    if r.seed is not None:
        params["seed"] = r.seed
    view = SimpleNamespace(
        samples=samples, mean=r.mean, std=r.std, frames=[], iterations=n, seconds=0.0,
        message="(restored from the session)", log=log, params=params,
    )
    sv._done(view)  # noqa: SLF001 - the same display as after a run
    doc.meta["last_sampler_result"] = r  # keep the session's own record
    return True

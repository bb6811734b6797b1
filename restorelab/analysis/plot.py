"""Small raster figures without matplotlib: line plots and image grids as float RGB arrays.

matplotlib is not a dependency of restorelab; these figures (a spectrum, a curve against N,
a grid of basis images) only need axes, polylines, markers and a few labels, which Pillow's
``ImageDraw`` and its built-in bitmap font provide. The result is an (H, W, 3) float array in
[0, 1] for :func:`restorelab.io.save_image`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["line_plot", "image_grid", "signed_to_unit", "PALETTE"]

#: line colours (RGB 0..255), distinguishable in print and for common colour-vision deficiencies
PALETTE = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0))


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.0e}"
    return f"{v:.3g}"


def line_plot(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    logx: bool = False,
    logy: bool = False,
    size: tuple[int, int] = (640, 420),
    markers: bool = True,
    hlines: Sequence[float] = (),
) -> np.ndarray:
    """Plot ``(label, x, y)`` series on shared axes; returns an (H, W, 3) float image in [0, 1].

    Labels are drawn with Pillow's default font: keep them ASCII (no Greek letters).
    Non-finite points (and non-positive ones on a log axis) are skipped. ``hlines`` draws
    dashed horizontal reference lines (e.g. the shrinkage bounds 0 and 1).
    """
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 62, 16, 28 if title else 12, 40

    def tx(v: float) -> float:
        return math.log10(v) if logx else v

    def ty(v: float) -> float:
        return math.log10(v) if logy else v

    def ok(x: float, y: float) -> bool:
        return math.isfinite(x) and math.isfinite(y) and (not logx or x > 0) and (not logy or y > 0)

    pts = [
        (tx(float(x)), ty(float(y)))
        for _, xs, ys in series
        for x, y in zip(xs, ys, strict=True)
        if ok(float(x), float(y))
    ]
    pts += [(pts[0][0], ty(v)) for v in hlines if pts and (not logy or v > 0)]
    if not pts:
        pts = [(0.0, 0.0), (1.0, 1.0)]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = w - left - right, h - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    xt = [float(k) for k in range(math.ceil(x0), math.floor(x1) + 1)] if logx else _nice_ticks(x0, x1)
    yt = [float(k) for k in range(math.ceil(y0), math.floor(y1) + 1)] if logy else _nice_ticks(y0, y1)
    for v in xt:
        X, _ = px(v, y0)
        d.line([X, top + ph, X, top + ph + 4], fill=(0, 0, 0))
        d.line([X, top, X, top + ph], fill=(232, 232, 232))
        d.text((X - 10, top + ph + 6), _fmt(10**v if logx else v), fill=(0, 0, 0))
    for v in yt:
        _, Y = px(x0, v)
        d.line([left - 4, Y, left, Y], fill=(0, 0, 0))
        d.line([left, Y, left + pw, Y], fill=(232, 232, 232))
        d.text((4, Y - 5), _fmt(10**v if logy else v), fill=(0, 0, 0))
    for v in hlines:
        if logy and v <= 0:
            continue
        _, Y = px(x0, ty(v))
        for X in range(left, left + pw, 8):
            d.line([X, Y, min(X + 4, left + pw), Y], fill=(120, 120, 120))
    for k, (label, xs, ys) in enumerate(series):
        col = PALETTE[k % len(PALETTE)]
        p = [px(tx(float(x)), ty(float(y))) for x, y in zip(xs, ys, strict=True) if ok(float(x), float(y))]
        if len(p) > 1:
            d.line(p, fill=col, width=2)
        if markers and len(p) <= 60:
            for X, Y in p:
                d.ellipse([X - 3, Y - 3, X + 3, Y + 3], outline=col, fill=col)
        d.line([left + 10, top + 10 + 14 * k, left + 30, top + 10 + 14 * k], fill=col, width=2)
        d.text((left + 34, top + 4 + 14 * k), label, fill=(0, 0, 0))
    if title:
        d.text((left, 8), title, fill=(0, 0, 0))
    if xlabel:
        d.text((left + pw // 2 - 3 * len(xlabel), h - 16), xlabel, fill=(0, 0, 0))
    if ylabel:
        d.text((4, top - 14 if top > 14 else 0), ylabel, fill=(0, 0, 0))
    return np.asarray(img, dtype=np.float32) / 255.0


def signed_to_unit(v: np.ndarray) -> np.ndarray:
    """Map a signed array to [0, 1] with 0 at 0.5 (symmetric scale max |v|), for display."""
    m = float(np.max(np.abs(v))) if v.size else 0.0
    return np.full_like(v, 0.5, dtype=np.float32) if m == 0 else (0.5 + 0.5 * v / m).astype(np.float32)


def image_grid(
    images: Sequence[np.ndarray], *, cols: int, scale: int = 1, gap: int = 2, labels: Sequence[str] = ()
) -> np.ndarray:
    """Tile (h, w) or (h, w, 3) images in [0, 1] row-major, ``cols`` per row, enlarged ``scale``× (nearest).

    Gray tiles are repeated to RGB when any tile is colour; ``labels`` are written under tiles.
    """
    if not images:
        raise ValueError("image_grid needs at least one image")
    colour = any(a.ndim == 3 and a.shape[2] == 3 for a in images)
    tiles = []
    for a in images:
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if colour and a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
        tiles.append(np.clip(a, 0.0, 1.0))
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    lab = 12 if labels else 0
    rows = math.ceil(len(tiles) / cols)
    shape: tuple[int, ...] = (rows * (th + gap + lab) + gap, cols * (tw + gap) + gap)
    if colour:
        shape = (*shape, 3)
    out = np.ones(shape, np.float32)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = gap + r * (th + gap + lab), gap + c * (tw + gap)
        out[y : y + t.shape[0], x : x + t.shape[1]] = t
    if labels:
        from PIL import Image, ImageDraw

        im = Image.fromarray((out * 255).round().astype(np.uint8))
        d = ImageDraw.Draw(im)
        for k, text in enumerate(labels[: len(tiles)]):
            r, c = divmod(k, cols)
            d.text(
                (gap + c * (tw + gap), gap + r * (th + gap + lab) + th),
                text,
                fill=0 if not colour else (0, 0, 0),
            )
        out = np.asarray(im, dtype=np.float32) / 255.0
    return out

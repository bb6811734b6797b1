"""Classical hole fills: methods of their own and warm starts for the learned inpainting.

* ``telea`` — fast marching: each pixel is a gradient-corrected weighted mean of the known
  pixels near the front (Telea, *An image inpainting technique based on the fast marching
  method*, J. Graphics Tools 2004), :func:`cv2.inpaint` with ``INPAINT_TELEA``.
* ``ns`` — Navier–Stokes: isophotes continued into the hole by transporting the image
  Laplacian along them (Bertalmío, Bertozzi & Sapiro, CVPR 2001), ``INPAINT_NS``.
* ``biharmonic`` — the smoothest fill, Δ²u = 0 in the hole with the image as boundary
  values (Damelin & Hoang 2018), :func:`skimage.restoration.inpaint_biharmonic`.
* ``patch`` — exemplar fill in the spirit of Criminisi, Pérez & Toyama (IEEE TIP 2004):
  the pixel of the fill front whose patch is most known is filled by copying the best
  matching fully known patch of its neighbourhood (sum of squared differences over the known
  pixels, :func:`cv2.matchTemplate` with a mask), until the hole is filled. It continues
  texture where the diffusion fills above blur it. OpenCV contrib's ``xphoto`` inpainting is
  not used: its headless wheel replaces the ``cv2`` package of ``opencv-python-headless``
  (both install ``cv2/``), so the two cannot be dependencies together.

Every fill takes a float image (H, W) or (H, W, C) on [0, 1] and a boolean hole mask (True =
to fill) and returns a float32 image of the same shape whose known pixels are the input's,
exactly. Telea and Navier–Stokes run per channel on 16 bits (``cv2.inpaint`` accepts one
16-bit channel) so little precision is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from restorelab.params import Param, resolve_params

__all__ = ["FILLS", "FILL_PARAMS", "fill", "telea", "navier_stokes", "biharmonic", "blend", "patch_fill"]

#: parameters of the classical fills, declared once (CLI flags and GUI widgets are built from them)
FILL_PARAMS: tuple[Param, ...] = (
    Param("radius", int, 5, lo=1, hi=64, unit="px", label="Fill radius",
          help="Telea / Navier–Stokes / blend: neighbourhood radius of the known pixels each fill uses"),
    Param("patch", int, 9, lo=3, hi=41, unit="px", label="Patch size",
          help="patch fill: side of the square patches compared and copied (odd)"),
    Param("search", int, 48, lo=8, hi=512, unit="px", label="Search radius",
          help="patch fill: how far from a hole pixel its source patch is searched"),
)


def _prepare(image: Any, hole: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(image, dtype=np.float32)
    m = np.asarray(hole, dtype=bool)
    if x.ndim not in (2, 3) or m.shape != x.shape[:2]:
        raise ValueError(f"image (H, W[, C]) and hole (H, W) must match, got {x.shape} and {m.shape}")
    return x, m


def _per_channel(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    if x.ndim == 2:
        return fn(x)
    return np.stack([fn(np.ascontiguousarray(x[:, :, c])) for c in range(x.shape[2])], axis=2)


def _keep_known(x: np.ndarray, out: np.ndarray, m: np.ndarray) -> np.ndarray:
    res = x.copy()
    res[m] = out[m]
    return res


def _cv2_fill(image: Any, hole: Any, radius: int, flag: int) -> np.ndarray:
    import cv2

    x, m = _prepare(image, hole)
    if not m.any():
        return x.copy()
    m8 = m.astype(np.uint8)
    # 16 bits per channel: cv2.inpaint's float32 path returns values far outside the range of
    # its inputs (Telea: −1.1 to 2.2 on a [0, 1] image, OpenCV 4.x/5.x); 8 bits would quantise
    q = (np.clip(x, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    out = _per_channel(q, lambda c: cv2.inpaint(c, m8, float(radius), flag)).astype(np.float32) / 65535.0
    return _keep_known(x, out, m)


def telea(image: Any, hole: Any, radius: int = 5) -> np.ndarray:
    """Telea's fast-marching fill (``cv2.INPAINT_TELEA``)."""
    import cv2

    return _cv2_fill(image, hole, radius, cv2.INPAINT_TELEA)


def navier_stokes(image: Any, hole: Any, radius: int = 5) -> np.ndarray:
    """Navier–Stokes isophote transport (``cv2.INPAINT_NS``)."""
    import cv2

    return _cv2_fill(image, hole, radius, cv2.INPAINT_NS)


def biharmonic(image: Any, hole: Any) -> np.ndarray:
    """The biharmonic fill (Δ²u = 0 in the hole), scikit-image's ``inpaint_biharmonic``.

    scikit-image solves one sparse system per connected hole over the hole's bounding box,
    so large images with small holes stay cheap."""
    from skimage.restoration import inpaint_biharmonic

    x, m = _prepare(image, hole)
    if not m.any():
        return x.copy()
    out = inpaint_biharmonic(x, m, channel_axis=-1 if x.ndim == 3 else None)
    return _keep_known(x, np.asarray(out, np.float32), m)


def blend(image: Any, hole: Any, radius: int = 5) -> np.ndarray:
    """The mean of the Navier–Stokes and the biharmonic fills.

    Why: the two err differently — Navier–Stokes transports isophotes into the hole (sharp
    but streaky), the biharmonic fill is the smoothest continuation of the border (soft but
    without streaks) — so their errors are partly independent and their mean is closer to
    the truth than either on every mask kind of ``restorelab bench inpaint`` (the "blend"
    rows of BENCHMARKS.md). Navier–Stokes runs on the image minus the plane through the known
    pixels (:func:`_known_plane`), so that the blend keeps a constant or a linear colour.
    """
    x, m = _prepare(image, hole)
    if not m.any():
        return x.copy()
    plane = _known_plane(x, m)
    r = x - plane
    lo, span = float(r.min()), float(r.max() - r.min()) or 1.0
    # the cv2 fills work on [0, 1] in 16 bits: the residual is mapped there and back
    ns = navier_stokes((r - lo) / span, m, radius) * span + lo + plane
    return _keep_known(x, (0.5 * (ns + biharmonic(x, m))).astype(np.float32), m)


def _known_plane(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The least-squares plane a + b·y + c·x (per channel) through the known pixels.

    Navier–Stokes transport keeps a constant exactly but bends a linear ramp (by up to about
    11/255 on a gentle one); filling the image minus this plane and adding it back keeps
    linear colour exactly as well, the plane being the same on both sides of the hole."""
    h, w = m.shape
    k = ~m
    v = x.reshape(h, w, -1).astype(np.float64)
    ys = (np.arange(h, dtype=np.float64) / h)[:, None]
    xs = (np.arange(w, dtype=np.float64) / w)[None, :]
    # normal equations of the 3-parameter fit from row/column sums (no n×3 design matrix)
    kr, kc = k.sum(1).astype(np.float64), k.sum(0).astype(np.float64)
    n, sy, sx = float(kr.sum()), float(kr @ ys[:, 0]), float(kc @ xs[0])
    syy, sxx = float(kr @ ys[:, 0] ** 2), float(kc @ xs[0] ** 2)
    sxy = float(ys[:, 0] @ (k.astype(np.float64) @ xs[0]))
    ata = np.array([[n, sy, sx], [sy, syy, sxy], [sx, sxy, sxx]])
    vk = v * k[:, :, None]
    atb = np.stack([vk.sum((0, 1)), (vk.sum(1) * ys).sum(0), (vk.sum(0) * xs[0][:, None]).sum(0)])
    coef = np.linalg.lstsq(ata, atb, rcond=None)[0]
    plane = coef[0] + ys[:, :, None] * coef[1] + xs[:, :, None] * coef[2]
    return plane.reshape(x.shape).astype(np.float32)


def patch_fill(image: Any, hole: Any, patch: int = 9, search: int = 48) -> np.ndarray:
    """Exemplar fill: copy the best matching known patch into the most known front pixel.

    Order: the confidence of a front pixel is the mean confidence of its patch (Criminisi et
    al. 2004, without the isophote data term; known pixels 1, filled ones the confidence
    they were filled with): the most constrained pixels are filled first, so the hole is
    peeled from all its sides. Match: the sum of squared differences over the patch's known
    pixels, each weighted by its confidence, among the patches within ``search`` pixels that
    lie wholly outside the original hole. Each step fills every unknown pixel of one patch.
    """
    import cv2

    x, m = _prepare(image, hole)
    if not m.any():
        return x.copy()
    p = int(patch) | 1
    r = p // 2
    img = x if x.ndim == 3 else x[:, :, None]
    H, W, C = img.shape
    pad = ((r, r), (r, r), (0, 0))
    out = np.pad(img, pad, mode="reflect").astype(np.float32)
    unknown = np.pad(m, r, mode="constant", constant_values=False)
    # a candidate source patch: wholly inside the image and wholly outside the original hole
    inside = np.zeros_like(unknown)
    inside[r : r + H, r : r + W] = True
    source_ok = cv2.erode((inside & ~unknown).astype(np.uint8), np.ones((p, p), np.uint8)).astype(bool)
    if not source_ok.any():
        return biharmonic(x, m)  # no whole known patch anywhere: fall back to the smooth fill
    kernel = np.ones((3, 3), np.uint8)
    # Criminisi's confidence C: 1 on known pixels, 0 in the hole; a filled pixel takes the
    # confidence of the patch it was filled from, so the fill peels the hole from all sides
    cmap = (~unknown).astype(np.float32)
    conf = cv2.boxFilter(cmap, -1, (p, p), normalize=True, borderType=cv2.BORDER_CONSTANT)
    while True:
        front = unknown & cv2.dilate((~unknown).astype(np.uint8), kernel).astype(bool)
        ys, xs = np.nonzero(front)
        if ys.size == 0:
            break
        k = int(np.argmax(conf[ys, xs]))
        cy, cx = int(ys[k]), int(xs[k])
        tmpl = out[cy - r : cy + r + 1, cx - r : cx + r + 1]
        # the match weighs each pixel by its confidence: original pixels count most
        tmask = np.repeat(cmap[cy - r : cy + r + 1, cx - r : cx + r + 1, None], C, axis=2)
        s = int(search)
        found = None
        while found is None:
            y0, y1 = max(r, cy - s) - r, min(out.shape[0] - r, cy + s + 1) + r
            x0, x1 = max(r, cx - s) - r, min(out.shape[1] - r, cx + s + 1) + r
            ok = source_ok[y0 + r : y1 - r, x0 + r : x1 - r]
            if ok.any():
                res = cv2.matchTemplate(
                    out[y0:y1, x0:x1], tmpl, cv2.TM_SQDIFF, mask=tmask
                )
                res = np.where(ok, res, np.inf)
                j = int(np.argmin(res))
                sy, sx = divmod(j, res.shape[1])
                found = (y0 + sy + r, x0 + sx + r)
            else:
                s *= 2
        sy, sx = found
        src = out[sy - r : sy + r + 1, sx - r : sx + r + 1]
        u = unknown[cy - r : cy + r + 1, cx - r : cx + r + 1]
        tmpl[u] = src[u]
        cmap[cy - r : cy + r + 1, cx - r : cx + r + 1][u] = conf[cy, cx]
        unknown[cy - r : cy + r + 1, cx - r : cx + r + 1] = False
        a0, a1 = max(0, cy - 2 * r), min(unknown.shape[0], cy + 2 * r + 1)
        b0, b1 = max(0, cx - 2 * r), min(unknown.shape[1], cx + 2 * r + 1)
        e0, e1 = max(0, a0 - r), min(unknown.shape[0], a1 + r)
        f0, f1 = max(0, b0 - r), min(unknown.shape[1], b1 + r)
        sub = cv2.boxFilter(cmap[e0:e1, f0:f1], -1, (p, p), normalize=True, borderType=cv2.BORDER_CONSTANT)
        conf[a0:a1, b0:b1] = sub[a0 - e0 : a1 - e0, b0 - f0 : b1 - f0]
    res_img = out[r : r + H, r : r + W]
    res_img = res_img if x.ndim == 3 else res_img[:, :, 0]
    return _keep_known(x, res_img, m)


#: the fills by name (CLI ``--fill``, GUI combo box, bench columns)
FILLS: dict[str, Callable[..., np.ndarray]] = {
    "telea": telea,
    "ns": navier_stokes,
    "biharmonic": biharmonic,
    "blend": blend,
    "patch": patch_fill,
}

_USES = {
    "telea": ("radius",), "ns": ("radius",), "biharmonic": (), "blend": ("radius",),
    "patch": ("patch", "search"),
}


def fill(name: str, image: Any, hole: Any, **params: Any) -> np.ndarray:
    """Fill ``hole`` of ``image`` with the classical method ``name`` (:data:`FILLS`);
    ``params`` follow :data:`FILL_PARAMS` and are checked against their declared ranges."""
    if name not in FILLS:
        raise ValueError(f"unknown fill {name!r}; expected one of {', '.join(FILLS)}")
    p = resolve_params(FILL_PARAMS, params)
    return FILLS[name](image, hole, **{k: p[k] for k in _USES[name]})

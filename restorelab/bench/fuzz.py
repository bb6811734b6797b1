"""Fuzz the image loader and the session reader with mutated files.

``restorelab bench fuzz --n 100000`` builds valid seed files (PNG 8/16-bit gray/RGB/RGBA,
TIFF uint8/uint16/float32, JPEG gray/RGB, ``.npy``, session JSON + its ``.npz`` sidecar),
mutates them (bit flips, interesting byte values, truncation, chunk duplication/removal,
splicing, and format-aware edits: PNG IHDR width/height set to huge values with a valid
CRC, TIFF IFD tags, JPEG frame sizes, ``.npy`` header shapes/dtypes, JSON values) and feeds
each input to :func:`restorelab.io.load_image` and :func:`restorelab.session.load_session`.

An input either loads, or raises the documented error (``ImageError`` / ``SessionError``);
anything else is a *crash* (another exception, or the worker process dying), and an input
that takes longer than the per-input limit is a *hang*. Inputs run in worker processes
watched by the parent, so a segfault or an endless loop in a C decoder is caught too; each
worker runs under an address-space limit, so a loader that allocates a huge image for a
small malformed file shows up as a crash (MemoryError) instead of taking the machine down.
Input ``i`` of a run with seed ``s`` is a pure function of ``(s, i)``: reproducers are saved
with ``--crash-dir`` and regenerate with :func:`make_case`.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import struct
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Seed", "Case", "make_seeds", "make_case", "mutate", "run_case", "fuzz", "FuzzReport"]

IMAGE_KINDS = ("png", "tiff", "jpeg", "npy")
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
HUGE32 = (0, 1, 20000, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 24)


@dataclass
class Seed:
    kind: str  # png, tiff, jpeg, npy, session
    name: str
    data: bytes
    side: bytes | None = None  # session sidecar


@dataclass
class Case:
    kind: str
    ext: str
    data: bytes
    side: bytes | None = None
    ops: list[str] = field(default_factory=list)
    seed_name: str = ""


# ----------------------------------------------------------------------------- seeds
def _tiny_images() -> dict[str, np.ndarray]:
    r = np.random.default_rng(1234)
    yy, xx = np.mgrid[0:12, 0:16]
    base = ((xx * 13 + yy * 7) % 256).astype(np.uint8)
    noise = r.integers(0, 256, size=(12, 16), dtype=np.uint8)
    g8 = (base // 2 + noise // 2).astype(np.uint8)
    rgb8 = np.stack([g8, base, noise], axis=2)
    rgba8 = np.concatenate([rgb8, np.full((12, 16, 1), 200, np.uint8)], axis=2)
    return {
        "g8": g8,
        "rgb8": rgb8,
        "rgba8": rgba8,
        "g16": (g8.astype(np.uint16) * 257),
        "rgb16": (rgb8.astype(np.uint16) * 257),
        "f32": (g8 / 255.0).astype(np.float32),
        "rgbf32": (rgb8 / 255.0).astype(np.float32),
    }


def make_seeds() -> list[Seed]:
    """Valid files of every supported kind (small, so one input decodes in about a millisecond)."""
    import cv2
    import tifffile

    ims = _tiny_images()
    seeds: list[Seed] = []

    def cv_png(a: np.ndarray) -> bytes:
        b = a[..., ::-1] if a.ndim == 3 else a  # cv2 wants BGR(A)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(b))
        assert ok
        return buf.tobytes()

    for k in ("g8", "rgb8", "rgba8", "g16", "rgb16"):
        seeds.append(Seed("png", f"png-{k}", cv_png(ims[k])))
    for k in ("g8", "rgb8", "g16", "rgb16", "f32", "rgbf32", "rgba8"):
        buf = io.BytesIO()
        tifffile.imwrite(buf, ims[k], photometric="rgb" if ims[k].ndim == 3 else "minisblack")
        seeds.append(Seed("tiff", f"tiff-{k}", buf.getvalue()))
    buf = io.BytesIO()
    tifffile.imwrite(buf, ims["rgb8"], photometric="rgb", compression="zlib")
    seeds.append(Seed("tiff", "tiff-rgb8-zlib", buf.getvalue()))
    for k in ("g8", "rgb8"):
        a = ims[k][..., ::-1] if ims[k].ndim == 3 else ims[k]
        ok, jb = cv2.imencode(".jpg", np.ascontiguousarray(a), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        seeds.append(Seed("jpeg", f"jpeg-{k}", jb.tobytes()))
    ok, jb = cv2.imencode(".jpg", ims["rgb8"], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    seeds.append(Seed("jpeg", "jpeg-progressive", jb.tobytes()))
    for k in ("f32", "rgbf32", "g8", "g16"):
        buf = io.BytesIO()
        np.save(buf, ims[k], allow_pickle=False)
        seeds.append(Seed("npy", f"npy-{k}", buf.getvalue()))
    seeds.extend(_session_seeds(ims))
    return seeds


def _session_seeds(ims: dict[str, np.ndarray]) -> list[Seed]:
    from restorelab.sample_result import SampleResult
    from restorelab.session import (
        ClonePlacement,
        MaskLayer,
        MethodChoice,
        Session,
        save_session,
    )

    out = []
    img = (ims["rgb8"] / 255.0).astype(np.float32)
    m = np.zeros(img.shape[:2], bool)
    m[3:7, 4:9] = True
    full = Session(
        image_path="/nonexistent/photo.png",
        image_sha256="0" * 64,
        image=img,
        masks=[MaskLayer("hole", m), MaskLayer("soft", (m * 0.5).astype(np.float32), visible=False)],
        clones=[ClonePlacement("photo", m, (2, -3), "mixed", params={"solver": "cg"})],
        methods=[MethodChoice("denoise", "tv", {"lam": 0.08, "max_iter": 50}, 25 / 255, 7)],
        history=[MethodChoice("edit", "clone", {"mode": "mixed"})],
        sampler_results=[
            SampleResult(samples=[img, img], mean=img, std=img * 0.1,
                         log=[(1, 1.0, 0.01), (2, 0.5, 0.02), (3, 0.25, 0.03)],
                         sigma_log=np.array([[1.0, 1.0], [0.5, 0.5], [0.25, np.nan]]), iterations=3,
                         converged=True, message="done", params={"beta": 0.01}, method="inpaint", seed=3)
        ],
        extra={"zoom": 1.5, "tool": "brush", "nested": {"a": [1, 2, None]}},
        session_id="f" * 32,
    )
    minimal = Session(session_id="e" * 32, extra={"empty": True})
    with tempfile.TemporaryDirectory() as d:
        for name, s, comp in (("session-full", full, True), ("session-raw", full, False),
                              ("session-min", minimal, False)):
            p = save_session(Path(d) / "s.rlsession", s, compress=comp)
            doc = json.loads(p.read_text())
            doc["saved_at"] = "2026-01-01T00:00:00+00:00"
            side = (Path(d) / doc["sidecar"]["file"]).read_bytes()
            out.append(Seed("session", name, json.dumps(doc, indent=1).encode(), side))
    return out


# ----------------------------------------------------------------------------- mutations
def _bitflip(d: bytearray, r: np.random.Generator) -> str:
    k = int(r.integers(1, 9))
    for _ in range(k):
        i = int(r.integers(0, len(d)))
        d[i] ^= 1 << int(r.integers(0, 8))
    return f"bitflip{k}"


def _interesting(d: bytearray, r: np.random.Generator) -> str:
    i = int(r.integers(0, len(d)))
    n = int(r.integers(1, 5))
    v = int(r.choice(INTERESTING))
    d[i : i + n] = bytes([v]) * len(d[i : i + n])
    return f"set{n}@{i}={v}"


def _truncate(d: bytearray, r: np.random.Generator) -> str:
    n = int(r.integers(0, len(d)))
    del d[n:]
    return f"truncate{n}"


def _dup(d: bytearray, r: np.random.Generator) -> str:
    a = int(r.integers(0, len(d)))
    b = min(len(d), a + int(r.integers(1, 256)))
    c = int(r.integers(0, len(d) + 1))
    d[c:c] = d[a:b]
    return f"dup[{a}:{b}]@{c}"


def _delete(d: bytearray, r: np.random.Generator) -> str:
    a = int(r.integers(0, len(d)))
    b = min(len(d), a + int(r.integers(1, 64)))
    del d[a:b]
    return f"del[{a}:{b}]"


def _insert(d: bytearray, r: np.random.Generator) -> str:
    c = int(r.integers(0, len(d) + 1))
    n = int(r.integers(1, 32))
    d[c:c] = r.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    return f"ins{n}@{c}"


GENERIC: tuple[Callable[[bytearray, np.random.Generator], str], ...] = (
    _bitflip, _bitflip, _interesting, _truncate, _dup, _delete, _insert,
)


def _png_chunks(d: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, type) of each PNG chunk."""
    out, pos = [], 8
    while pos + 8 <= len(d):
        (ln,) = struct.unpack(">I", d[pos : pos + 4])
        out.append((pos, ln, bytes(d[pos + 4 : pos + 8])))
        pos += 12 + ln
        if ln > len(d):
            break
    return out


def _png_op(d: bytearray, r: np.random.Generator) -> str:
    chunks = _png_chunks(d)
    if not chunks:
        return _bitflip(d, r)
    which = int(r.integers(0, 5))
    if which <= 1 and chunks[0][2] == b"IHDR":  # huge/zero width or height, CRC fixed
        pos = chunks[0][0]
        field_off = pos + 8 + (0 if which == 0 else 4)
        v = int(r.choice(HUGE32))
        d[field_off : field_off + 4] = struct.pack(">I", v)
        if r.random() < 0.85:
            crc = zlib.crc32(bytes(d[pos + 4 : pos + 8 + 13])) & 0xFFFFFFFF
            d[pos + 21 : pos + 25] = struct.pack(">I", crc)
        return f"png-{'w' if which == 0 else 'h'}={v}"
    if which == 2 and chunks[0][2] == b"IHDR":  # bit depth / colour type
        pos = chunks[0][0]
        d[pos + 16 + int(r.integers(0, 2))] = int(r.choice([0, 1, 2, 3, 4, 5, 6, 8, 16, 255]))
        crc = zlib.crc32(bytes(d[pos + 4 : pos + 21])) & 0xFFFFFFFF
        d[pos + 21 : pos + 25] = struct.pack(">I", crc)
        return "png-depth/type"
    pos, ln, typ = chunks[int(r.integers(0, len(chunks)))]
    if which == 3:  # duplicate a whole chunk
        end = min(len(d), pos + 12 + ln)
        d[end:end] = d[pos:end]
        return f"png-dup-{typ!r}"
    v = int(r.choice(HUGE32))
    d[pos : pos + 4] = struct.pack(">I", v)
    return f"png-len-{typ!r}={v}"


def _tiff_op(d: bytearray, r: np.random.Generator) -> str:
    if len(d) < 8 or bytes(d[:2]) not in (b"II", b"MM"):
        return _bitflip(d, r)
    e = "<" if d[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", d[4:8])
    if ifd + 2 > len(d):
        return _bitflip(d, r)
    (n,) = struct.unpack(e + "H", d[ifd : ifd + 2])
    entries = [ifd + 2 + 12 * k for k in range(n) if ifd + 2 + 12 * k + 12 <= len(d)]
    if not entries:
        return _bitflip(d, r)
    tags = {struct.unpack(e + "H", d[p : p + 2])[0]: p for p in entries}
    pref = [t for t in (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 339) if t in tags]
    if pref and r.random() < 0.7:
        p = tags[int(r.choice(pref))]
    else:
        p = entries[int(r.integers(0, len(entries)))]
    (tag,) = struct.unpack(e + "H", d[p : p + 2])
    part = int(r.integers(0, 3))
    if part == 0:  # value
        v = int(r.choice(HUGE32))
        d[p + 8 : p + 12] = struct.pack(e + "I", v)
        return f"tiff-tag{tag}-value={v}"
    if part == 1:  # count
        v = int(r.choice(HUGE32))
        d[p + 4 : p + 8] = struct.pack(e + "I", v)
        return f"tiff-tag{tag}-count={v}"
    v = int(r.integers(0, 20))
    d[p + 2 : p + 4] = struct.pack(e + "H", v)
    return f"tiff-tag{tag}-type={v}"


def _jpeg_op(d: bytearray, r: np.random.Generator) -> str:
    sofs = [i for i in range(2, len(d) - 9) if d[i] == 0xFF and d[i + 1] in (0xC0, 0xC1, 0xC2)]
    segs = [i for i in range(2, len(d) - 4) if d[i] == 0xFF and 0xC0 <= d[i + 1] <= 0xFE and d[i + 1] != 0xD8]
    which = int(r.integers(0, 3))
    if which == 0 and sofs:
        i = sofs[0]
        off = i + 5 + 2 * int(r.integers(0, 2))
        v = int(r.choice([0, 1, 0xFFFF, 20000, 0x8000]))
        d[off : off + 2] = struct.pack(">H", v)
        return f"jpeg-size={v}"
    if which == 1 and segs:
        i = segs[int(r.integers(0, len(segs)))]
        v = int(r.choice([0, 1, 2, 0xFFFF, 0x8000]))
        d[i + 2 : i + 4] = struct.pack(">H", v)
        return f"jpeg-seglen={v}"
    if segs:
        i = segs[int(r.integers(0, len(segs)))]
        (ln,) = struct.unpack(">H", d[i + 2 : i + 4])
        end = min(len(d), i + 2 + ln)
        d[end:end] = d[i:end]
        return "jpeg-dup-seg"
    return _bitflip(d, r)


_NPY_SHAPES = ("(100000, 100000)", "(20000, 20000, 4)", "(-1, 5)", "(0, 16)", "(12, 16, 7)", "(3,)",
               "(2, 2, 2, 2)", "(4611686018427387904, 4)", "(12, 16)", "()")
_NPY_DESCR = ("'|O'", "'<f8'", "'>f4'", "'|b1'", "'<c8'", "'<U4'", "'<i8'", "'|u1'", "'<u2'", "'V8'")


def _npy_op(d: bytearray, r: np.random.Generator) -> str:
    s = bytes(d)
    start, end = s.find(b"{"), s.find(b"}")
    if start < 0 or end < 0:
        return _bitflip(d, r)
    hdr = s[start : end + 1].decode("latin-1")
    if r.random() < 0.5:
        new = _NPY_SHAPES[int(r.integers(0, len(_NPY_SHAPES)))]
        hdr2 = hdr[: hdr.find("'shape':")] + f"'shape': {new}, }}"
        tag = f"npy-shape={new}"
    else:
        new = _NPY_DESCR[int(r.integers(0, len(_NPY_DESCR)))]
        i = hdr.find("'descr':")
        j = hdr.find(",", i)
        hdr2 = hdr[:i] + f"'descr': {new}" + hdr[j:]
        tag = f"npy-descr={new}"
    d[start : end + 1] = hdr2.encode("latin-1")
    return tag


_JSON_VALUES: tuple[Any, ...] = (
    None, True, 0, -1, 2**31, 2**63, 10**400, 1e308, -0.0, "", "x" * 1000, [], {}, [[[[[]]]]],
    {"$array": "image", "shape": [12, 16, 3], "dtype": "float32"},
    {"$array": "missing", "shape": [1], "dtype": "bool"},
    {"$array": "mask/0", "shape": [99999, 99999], "dtype": "float64"},
    "../../etc/passwd", "restorelab-session", 2, 999,
)


def _json_paths(v: Any, path: tuple = (), out: list | None = None) -> list[tuple]:
    out = [] if out is None else out
    out.append(path)
    if len(path) > 12:
        return out
    if isinstance(v, dict):
        for k, x in v.items():
            _json_paths(x, path + (k,), out)
    elif isinstance(v, list):
        for i, x in enumerate(v[:8]):
            _json_paths(x, path + (i,), out)
    return out


def _json_op(doc: Any, r: np.random.Generator) -> tuple[Any, str]:
    paths = [p for p in _json_paths(doc) if p]
    p = paths[int(r.integers(0, len(paths)))]
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    what = int(r.integers(0, 4))
    if what == 0 and isinstance(parent, dict):
        del parent[p[-1]]
        return doc, f"json-del{list(p)}"
    if what == 1:  # deep nesting (RecursionError bait)
        depth = int(r.choice([50, 5000, 100000]))
        parent[p[-1]] = f"__DEEP{depth}__"  # expanded to [[[...0...]]] after json.dumps
        return doc, f"json-deep{depth}{list(p)}"
    v = _JSON_VALUES[int(r.integers(0, len(_JSON_VALUES)))]
    parent[p[-1]] = json.loads(json.dumps(v)) if not isinstance(v, int) or abs(v) < 2**64 else v
    return doc, f"json-set{list(p)}={str(v)[:20]}"


def mutate(seed: Seed, r: np.random.Generator, others: Sequence[Seed] = ()) -> Case:
    """One mutated input from ``seed``: 1 to 3 operations, generic or format-aware."""
    ops: list[str] = []
    ext = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "npy": ".npy", "session": ".rlsession"}[seed.kind]
    if seed.kind == "session":
        return _mutate_session(seed, r, ext)
    d = bytearray(seed.data)
    specific = {"png": _png_op, "tiff": _tiff_op, "jpeg": _jpeg_op, "npy": _npy_op}[seed.kind]
    for _ in range(int(r.integers(1, 4))):
        if not d:
            break
        u = r.random()
        if u < 0.45:
            try:
                ops.append(specific(d, r))
            except (IndexError, ValueError, struct.error):  # the structure was already broken
                ops.append(_bitflip(d, r))
        elif u < 0.5 and others:
            o = others[int(r.integers(0, len(others)))]
            a, b = int(r.integers(0, len(d) + 1)), int(r.integers(0, len(o.data) + 1))
            d = bytearray(d[:a] + o.data[b:])
            ops.append(f"splice:{o.name}")
        else:
            ops.append(GENERIC[int(r.integers(0, len(GENERIC)))](d, r))
    if r.random() < 0.03:  # wrong extension
        ext = [".png", ".tif", ".jpg", ".npy", ".bmp"][int(r.integers(0, 5))]
        ops.append(f"ext{ext}")
    return Case(seed.kind, ext, bytes(d), None, ops, seed.name)


def _mutate_session(seed: Seed, r: np.random.Generator, ext: str) -> Case:
    import hashlib

    assert seed.side is not None
    mode = int(r.integers(0, 10))
    ops: list[str] = []
    side: bytes | None = seed.side
    if mode <= 3:  # structural JSON edit
        doc = json.loads(seed.data)
        for _ in range(int(r.integers(1, 3))):
            doc, op = _json_op(doc, r)
            ops.append(op)
        text = json.dumps(doc)
        for depth in (50, 5000, 100000):
            text = text.replace(f'"__DEEP{depth}__"', "[" * depth + "0" + "]" * depth)
        data = text.encode()
    elif mode <= 6:  # bytes of the JSON
        d = bytearray(seed.data)
        for _ in range(int(r.integers(1, 4))):
            if d:
                ops.append(GENERIC[int(r.integers(0, len(GENERIC)))](d, r))
        data = bytes(d)
    else:  # bytes of the sidecar, checksum updated so that the zip/npy parser is reached
        d = bytearray(seed.side)
        for _ in range(int(r.integers(1, 3))):
            if d:
                u = r.random()
                if u < 0.4:
                    try:
                        ops.append(_npz_header_op(d, r))
                    except (IndexError, ValueError):
                        ops.append(_bitflip(d, r))
                else:
                    ops.append(GENERIC[int(r.integers(0, len(GENERIC)))](d, r))
        side = bytes(d)
        doc = json.loads(seed.data)
        if r.random() < 0.9:
            doc["sidecar"]["sha256"] = hashlib.sha256(side).hexdigest()
            ops.append("sha-fixed")
        if r.random() < 0.05:
            side = None
            ops.append("sidecar-missing")
        data = json.dumps(doc).encode()
    return Case("session", ext, data, side, ops, seed.name)


def _npz_header_op(d: bytearray, r: np.random.Generator) -> str:
    """Edit the shape/dtype of a stored (uncompressed) .npy member inside the zip."""
    s = bytes(d)
    idx = [i for i in range(len(s)) if s.startswith(b"'shape': (", i)]
    if not idx:
        return _bitflip(d, r)
    i = idx[int(r.integers(0, len(idx)))] + len(b"'shape': (")
    j = s.find(b")", i)
    new = [b"99999999, 99999999", b"-5, 3", b"0", b"4611686018427387904, 8", b"1, 1, 1, 1, 1"]
    v = new[int(r.integers(0, len(new)))]
    d[i:j] = v  # header length changes: the zip sizes/CRC no longer match either, both paths are checked
    return f"npz-shape=({v.decode()})"


def make_case(i: int, seed: int, seeds: Sequence[Seed], kinds: Sequence[str] | None = None) -> Case:
    """Input number ``i`` of a run with random seed ``seed`` (deterministic)."""
    r = np.random.default_rng([seed, i])
    pool = [s for s in seeds if kinds is None or s.kind in kinds]
    present = sorted({s.kind for s in pool})
    kind = present[int(r.integers(0, len(present)))]  # every kind equally often
    of_kind = [s for s in pool if s.kind == kind]
    s = of_kind[int(r.integers(0, len(of_kind)))]
    return mutate(s, r, [o for o in pool if o.kind == s.kind and o is not s])


# ----------------------------------------------------------------------------- running
def run_case(case: Case, workdir: Path) -> tuple[str, str]:
    """Feed ``case`` to its loader. Returns ``("ok"|"rejected"|"crash", detail)``."""
    from restorelab.session import SessionError, load_session

    if case.kind == "session":
        p = workdir / f"case{case.ext}"
        for old in workdir.glob("case.rlsession*"):
            old.unlink()
        p.write_bytes(case.data)
        if case.side is not None:
            try:
                name = json.loads(case.data)["sidecar"]["file"]
                ok = isinstance(name, str) and 0 < len(name) < 200 and Path(name).name == name
                (workdir / (name if ok else "case.rlsession.0000000000000000.npz")).write_bytes(case.side)
            except Exception:  # unparsable document or odd name: the sidecar under its usual name
                (workdir / "case.rlsession.0000000000000000.npz").write_bytes(case.side)
        try:
            load_session(p)
        except SessionError as e:
            return "rejected", str(e)[:200]
        except Exception as e:
            return "crash", f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc(limit=-6)
        return "ok", ""
    from restorelab.io import ImageError, load_image

    p = workdir / f"img{case.ext}"
    p.write_bytes(case.data)
    try:
        a = load_image(p)
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim not in (2, 3):
            return "crash", f"load_image returned {type(a).__name__} {getattr(a, 'dtype', '')} " \
                            f"{getattr(a, 'shape', '')}, not float32 (H,W[,C])"
    except ImageError as e:
        return "rejected", str(e)[:200]
    except Exception as e:
        return "crash", f"{type(e).__name__}: {e}"[:500] + "\n" + traceback.format_exc(limit=-6)
    return "ok", ""


def _worker(conn: Any, start: int, stop: int, seed: int, kinds: Sequence[str] | None, mem_limit: int) -> None:
    if mem_limit > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
        except (ImportError, ValueError, OSError):
            pass
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # tifffile logs every damaged tag
    try:  # libpng/libjpeg print to the C stderr; details come back through the pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"
    seeds = make_seeds()
    # import the loaders before the first timed input
    import restorelab.io  # noqa: F401
    import restorelab.session  # noqa: F401

    base = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base, prefix="rl-fuzz-") as d:
        wd = Path(d)
        conn.send(("ready", start))
        for i in range(start, stop):
            case = make_case(i, seed, seeds, kinds)
            t0 = time.perf_counter()
            outcome, detail = run_case(case, wd)
            conn.send((i, case.kind, outcome, detail if outcome == "crash" else "", time.perf_counter() - t0))
    conn.send(("end", stop))


@dataclass
class _Slot:
    next: int
    stop: int
    proc: Any = None
    conn: Any = None
    started: float = 0.0
    last: float | None = None


@dataclass
class FuzzReport:
    n: int
    seed: int
    counts: Counter = field(default_factory=Counter)  # (kind, outcome) -> count
    crashes: list[tuple[int, str, str]] = field(default_factory=list)  # (index, kind, detail)
    hangs: list[tuple[int, str]] = field(default_factory=list)
    max_time: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def table_rows(self) -> list[list[Any]]:
        rows = []
        kinds = sorted({k for k, _ in self.counts})
        for k in kinds:
            c = {o: self.counts[(k, o)] for o in ("ok", "rejected", "crash", "hang")}
            rows.append([k, sum(c.values()), c["ok"], c["rejected"], c["crash"], c["hang"],
                         f"{self.max_time.get(k, 0.0) * 1000:.0f}"])
        return rows


def fuzz(
    n: int = 100_000,
    *,
    seed: int = 0,
    jobs: int = 1,
    timeout_s: float = 10.0,
    mem_limit_mb: int = 4096,
    kinds: Sequence[str] | None = None,
    crash_dir: str | os.PathLike | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> FuzzReport:
    """Run ``n`` mutated inputs in ``jobs`` watched worker processes; see the module docstring."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rep = FuzzReport(n=n, seed=seed)
    if kinds is None:
        try:
            import restorelab.io  # noqa: F401
        except ImportError as e:
            rep.skipped.append(f"load_image (restorelab.io not importable: {e})")
            kinds = ["session"]
    jobs = max(1, int(jobs))
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    slots = [_Slot(int(bounds[j]), int(bounds[j + 1])) for j in range(jobs)]
    done = 0
    seeds_cache: list[Seed] | None = None

    def start(slot: _Slot) -> None:
        a, b = ctx.Pipe(duplex=False)
        args = (b, slot.next, slot.stop, seed, kinds, mem_limit_mb << 20)
        slot.proc = ctx.Process(target=_worker, args=args, daemon=True)
        slot.proc.start()
        b.close()
        slot.conn, slot.started, slot.last = a, time.perf_counter(), None

    def record_bad(i: int, what: str, detail: str) -> None:
        nonlocal seeds_cache
        if seeds_cache is None:
            seeds_cache = make_seeds()
        case = make_case(i, seed, seeds_cache, kinds)
        if what == "hang":
            rep.hangs.append((i, case.kind))
        else:
            rep.crashes.append((i, case.kind, detail))
        rep.counts[(case.kind, what)] += 1
        if crash_dir is not None:
            cd = Path(crash_dir)
            cd.mkdir(parents=True, exist_ok=True)
            stem = cd / f"{what}-{seed}-{i}-{case.seed_name}"
            stem.with_suffix(case.ext).write_bytes(case.data)
            if case.side is not None:
                stem.with_suffix(".npz").write_bytes(case.side)
            stem.with_suffix(".txt").write_text(
                f"seed={seed} index={i} kind={case.kind} seed_file={case.seed_name}\n"
                f"ops={case.ops}\n{detail}\n"
            )

    def drain(slot: _Slot) -> None:
        nonlocal done
        assert slot.conn is not None and slot.proc is not None
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                if msg[0] == "ready":
                    slot.last = time.perf_counter()
                elif msg[0] == "end":
                    slot.proc.join(5)
                    slot.proc = None
                    return
                else:
                    i, kind, outcome, detail, dt = msg
                    if outcome == "crash":
                        record_bad(i, "crash", detail)
                    else:
                        rep.counts[(kind, outcome)] += 1
                    rep.max_time[kind] = max(rep.max_time.get(kind, 0.0), dt)
                    slot.next = i + 1
                    slot.last = time.perf_counter()
                    done += 1
                    if on_progress is not None and done % 1000 == 0:
                        on_progress(done, n)
        except (EOFError, OSError):
            pass

    for s in slots:
        if s.next < s.stop:
            start(s)
    from multiprocessing.connection import wait

    while any(s.proc is not None for s in slots):
        wait([s.conn for s in slots if s.proc is not None], timeout=0.5)
        for s in slots:
            if s.proc is None:
                continue
            drain(s)
            if s.proc is None:
                continue
            now = time.perf_counter()
            stalled = s.last is not None and now - s.last > timeout_s
            if s.last is None and now - s.started > 300:
                raise RuntimeError("a fuzz worker did not start within 300 s")
            if not s.proc.is_alive() or stalled:
                if s.proc.is_alive():
                    s.proc.kill()
                s.proc.join(5)
                drain(s)
                if s.proc is None:
                    continue
                if s.next < s.stop:
                    if stalled:
                        record_bad(s.next, "hang", f"no answer within {timeout_s:g} s")
                    else:
                        record_bad(s.next, "crash", f"worker process died (exit code {s.proc.exitcode})")
                    done += 1
                    s.next += 1
                s.proc = None
                if s.next < s.stop:
                    start(s)
    rep.wall_s = time.perf_counter() - t0
    return rep


def report_markdown(rep: FuzzReport, command: str) -> str:
    """BENCHMARKS.md section for a fuzz run."""
    from restorelab.bench.report import machine_line, markdown_table

    md = [
        f"`{command}` — {rep.total} mutated inputs (seed {rep.seed}) in {rep.wall_s:.0f} s; "
        f"**{len(rep.crashes)} crashes, {len(rep.hangs)} hangs**. "
        "A crash is any exception other than `ImageError` (image loader) / `SessionError` "
        "(session reader), or a worker process dying; a hang is an input over the per-input time limit.",
        "",
        markdown_table(["target", "inputs", "loaded", "rejected (documented error)", "crashes", "hangs",
                        "slowest input (ms)"], rep.table_rows()),
        "",
    ]
    if rep.skipped:
        md.append("Skipped: " + "; ".join(rep.skipped) + "\n")
    for i, kind, detail in rep.crashes[:10]:
        md.append(f"- crash on input {i} ({kind}): `{detail.splitlines()[0][:150]}`")
    md.append("")
    md.append(f"Machine: {machine_line()}")
    return "\n".join(md)

"""Hostile-input families for ``restorelab bench fuzz``: a fixed catalogue of named kinds.

Where :mod:`restorelab.bench.fuzz` mutates valid files at random, this catalogue tries the
inputs a hostile or careless user can hand the program on purpose, each one once, each
with what must happen:

- ``session-json``: damaged documents (truncated, wrong types, bad versions, deep nesting,
  bad sidecar entries, array declarations that do not fit), refused with ``SessionError``;
- ``session-params``: every declared parameter of every denoiser, Poisson edit and sampler
  task given a value of the wrong type or out of range (and σ, seeds, clone placements):
  refused with ``SessionError`` naming the parameter, or loaded when the declaration
  allows the value;
- ``session-paths``: image paths and sidecar names leading out of the folder, FIFOs,
  devices, folders, links: refused (never blocking) or reported missing;
- ``session-bombs``: zip bombs, members larger than declared, arrays over the budget;
- ``session-nan``: NaN or ±inf in the working image, masks, sampler results;
- ``session-names``: sessions whose names hold glob characters, saved side by side; each
  must reopen with its own pixels (a wrong pixel is lost data);
- ``model-headers``: safetensors headers with huge or absurd configurations, mismatched
  tensors, FIFOs: ``ValueError`` before the network is built;
- ``tiff-photometric``: MinIsWhite, palette, CMYK, low bit depths (pixels compared with
  the TIFF 6.0 conversion) and unsupported interpretations (refused by name);
- ``image-bombs``: headers claiming huge images, a real decompression bomb under the
  limits (it must load within the memory budget);
- ``fifos``: named pipes and devices given to every reader (never blocking);
- ``long-names``: names over 255 bytes to every reader and writer;
- ``cli``: the command line with unbounded sizes, levels, σ, colliding outputs, FIFOs and
  long names: exit status 2, one line on stderr, no traceback, no output file.

A kind is *clean* when the documented outcome happened and no temporary file was left
(:func:`restorelab.safety.stale_temps` with ``include_live``); *failed* when anything else
happened (wrong pixels, a different error, a leftover); a *raw traceback* is an exception
of an undocumented type; a *hang* is a kind over the time limit. Each family runs in its
own watched worker process, whose peak resident memory is reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Kind", "Failed", "catalogue", "families", "run_kind"]


class Failed(AssertionError):
    """The kind did not behave as documented (wrong data, another error, a leftover file)."""


@dataclass(frozen=True)
class Kind:
    family: str
    name: str
    fn: Callable[[Path], str]


def _expect(fn: Callable[[], Any], types: type | tuple[type, ...], needle: str = "") -> str:
    """Run ``fn``; it must raise one of ``types`` whose message contains ``needle``."""
    try:
        fn()
    except types as e:
        msg = str(e)
        if needle and needle not in msg:
            raise Failed(f"refused, but the message lacks {needle!r}: {msg[:160]}") from None
        return f"refused: {msg.splitlines()[0][:100] if msg else type(e).__name__}"
    raise Failed(f"accepted; expected {getattr(types, '__name__', types)}")


def _no_temps(d: Path) -> None:
    from restorelab.safety import stale_temps

    for f in list(d.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            left = stale_temps(f, family=True, include_live=True)
            if left:
                raise Failed(f"temporary files left: {[x.name for x in left]}")
    hidden = [x.name for x in d.iterdir() if x.name.startswith(".") and x.name.endswith((".tmp", ".lock"))]
    if hidden:
        raise Failed(f"temporary files left: {hidden}")


# ----------------------------------------------------------------------------- sessions
def _base_session(shape: tuple[int, ...] = (12, 16, 3)) -> Any:
    from restorelab.sample_result import SampleResult
    from restorelab.session import ClonePlacement, MaskLayer, MethodChoice, Session

    r = np.random.default_rng(5)
    img = r.random(shape, dtype=np.float32)
    m = np.zeros(shape[:2], bool)
    m[2:6, 3:9] = True
    crop = img[:8, :8]
    return Session(
        image=img,
        masks=[MaskLayer("paint", m), MaskLayer("soft", (m * 0.5).astype(np.float32))],
        clones=[ClonePlacement("this image", m, (1, -2), "mixed", params={"solver": "cg"})],
        methods=[MethodChoice("denoise", "tv", {"lam": 0.1}, 0.1, 1)],
        sampler_results=[SampleResult(samples=[crop, crop], mean=crop, std=crop * 0.1,
                                      log=[(1, 0.5, 0.01)], sigma_log=np.array([[0.5, 0.5]]), iterations=1,
                                      converged=True, message="", params={"seed": 2}, method="inpaint",
                                      seed=2)],
        session_id="b" * 32,
    )


def _saved(d: Path, name: str = "s.rlsession", **kw: Any) -> Path:
    from restorelab.session import save_session

    s = _base_session()
    for k, v in kw.items():
        setattr(s, k, v)
    return save_session(d / name, s)


def _edit_doc(p: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    doc = json.loads(p.read_text())
    edit(doc)
    p.write_text(json.dumps(doc))


def _rewrite_arrays(p: Path, change: Callable[[dict[str, np.ndarray]], Any]) -> None:
    doc = json.loads(p.read_text())
    side = p.with_name(doc["sidecar"]["file"])
    with np.load(side, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    side.write_bytes(buf.getvalue())
    doc["sidecar"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    p.write_text(json.dumps(doc))


def _session_refused(needle: str = "") -> Callable[[Path, Path], str]:
    def check(d: Path, p: Path) -> str:
        from restorelab.session import SessionError, load_session

        return _expect(lambda: load_session(p), SessionError, needle)

    return check


def _doc_kind(name: str, edit: Callable[[dict[str, Any]], Any], needle: str = "") -> Kind:
    def fn(d: Path) -> str:
        p = _saved(d)
        _edit_doc(p, edit)
        return _session_refused(needle)(d, p)

    return Kind("session-json", name, fn)


def _raw_kind(name: str, text: bytes, needle: str = "") -> Kind:
    def fn(d: Path) -> str:
        p = d / "s.rlsession"
        p.write_bytes(text)
        return _session_refused(needle)(d, p)

    return Kind("session-json", name, fn)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        x = doc
        for k in path[:-1]:
            x = x[k]
        x[path[-1]] = value

    return edit


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        x = doc
        for k in path[:-1]:
            x = x[k]
        del x[path[-1]]

    return edit


def _session_json_kinds() -> list[Kind]:
    ks = [
        _raw_kind("empty file", b"", "invalid JSON"),
        _raw_kind("not UTF-8", b"\xff\xfe\x00garbage", "invalid JSON"),
        _raw_kind("JSON array", b"[]", "not a restorelab session"),
        _raw_kind("JSON null", b"null", "not a restorelab session"),
        _raw_kind("empty object", b"{}", "not a restorelab session"),
        _raw_kind("NaN constant", b'{"format": "restorelab-session", "version": NaN}', "invalid JSON"),
        _raw_kind("deep nesting 100000", b"[" * 100000 + b"]" * 100000, ""),
        _raw_kind("deep nesting in extra", b'{"format": "restorelab-session", "version": 1, "extra": {"a": '
                  + b"[" * 5000 + b"]" * 5000 + b"}}", ""),
        _raw_kind("pickle bytes", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.",
                  "invalid JSON"),
        _raw_kind("huge integer", b'{"format": "restorelab-session", "version": ' + b"9" * 5000 + b"}", ""),
    ]
    edits: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
        ("wrong format", _set(("format",), "other"), "not a restorelab session"),
        ("version 0", _set(("version",), 0), "bad version"),
        ("version -1", _set(("version",), -1), "bad version"),
        ("version string", _set(("version",), "1"), "bad version"),
        ("version float", _set(("version",), 1.5), "bad version"),
        ("version true", _set(("version",), True), "bad version"),
        ("version 99", _set(("version",), 99), "newer restorelab"),
        ("sidecar not an object", _set(("sidecar",), "x.npz"), "bad sidecar entry"),
        ("sidecar without file", _delete(("sidecar", "file")), "bad sidecar entry"),
        ("sidecar without hash", _delete(("sidecar", "sha256")), "bad sidecar entry"),
        ("sidecar name ../", _set(("sidecar", "file"), "../s.npz"), "bad sidecar file name"),
        ("sidecar name absolute", _set(("sidecar", "file"), "/tmp/s.npz"), "bad sidecar file name"),
        ("sidecar name in a subfolder", _set(("sidecar", "file"), "sub/s.npz"), "bad sidecar file name"),
        ("sidecar name not .npz", _set(("sidecar", "file"), "s.rlsession"), "bad sidecar file name"),
        ("sidecar missing", _set(("sidecar", "file"), "s.rlsession.0000000000000000.npz"), "missing"),
        ("sidecar hash wrong", _set(("sidecar", "sha256"), "0" * 64), "checksum mismatch"),
        ("no sidecar but arrays", _delete(("sidecar",)), "names no array file"),
        ("masks not a list", _set(("masks",), {"a": 1}), "does not declare"),
        ("mask entry not an object", _set(("masks", 0), 5), "does not declare"),
        ("mask name a number", _set(("masks", 0, "name"), 5), "wrong type"),
        ("mask reference a string", _set(("masks", 0, "mask"), "mask/0"), "does not declare"),
        ("mask of another size", _set(("masks", 0, "mask", "shape"), [3, 3]), "mask"),
        ("image declared 4-D", _set(("image", "shape"), [1, 12, 16, 3]), "shape"),
        ("image declared object dtype", _set(("image", "dtype"), "object"), "bad array declaration"),
        ("image declared complex", _set(("image", "dtype"), "complex64"), "bad array declaration"),
        ("image dtype an object", _set(("image", "dtype"), {"a": 1}), "bad array declaration"),
        ("image dtype a list", _set(("image", "dtype"), ["float32"]), "bad array declaration"),
        ("image declared negative shape", _set(("image", "shape"), [-12, 16, 3]), "bad array declaration"),
        ("image declared 2^40 rows", _set(("image", "shape"), [2**41, 16, 3]), "bad array declaration"),
        ("image declared 9 dims", _set(("image", "shape"), [1] * 9), "bad array declaration"),
        ("image shape of floats", _set(("image", "shape"), [12.0, 16, 3]), "bad array declaration"),
        ("image declared float64", _set(("image", "dtype"), "float64"), ""),
        ("array key declared twice", _set(("masks", 1, "mask"), {"$array": "mask/0", "shape": [3],
                                                                 "dtype": "bool"}), "declared twice"),
        ("array missing from the sidecar", _set(("masks", 0, "mask", "$array"), "mask/9"), ""),
        ("clone offset three numbers", _set(("clones", 0, "offset"), [1, 2, 3]), "two integers"),
        ("clone offset floats", _set(("clones", 0, "offset"), [1.5, 2]), "two integers"),
        ("clone offset 2^40", _set(("clones", 0, "offset"), [2**40, 0]), "out of range"),
        ("clone mode unknown", _set(("clones", 0, "mode"), "melt"), "unknown clone mode"),
        ("methods not a list", _set(("methods",), "tv"), "wrong type"),
        ("method without kind", _delete(("methods", 0, "kind")), "no 'kind'"),
        ("method sigma a string", _set(("methods", 0, "sigma"), "0.1"), "wrong type"),
        ("method sigma 10^400", _set(("methods", 0, "sigma"), 10**400), ""),
        ("sampler mean missing", _delete(("sampler_results", 0, "mean")), "does not declare"),
        ("sampler log shape wrong", _set(("sampler_results", 0, "log", "shape"), [1, 4]), ""),
        ("sampler frames without steps", _set(("sampler_results", 0, "frame_steps"), [1, 2]), "frames"),
        ("sampler origin negative", _set(("sampler_results", 0, "params", "origin"), [-1, 0]), "origin"),
        ("extra with a NaN-like string ok, with a set", _set(("extra",), [1]), "wrong type"),
        ("session id a number", _set(("session_id",), 5), "wrong type"),
    ]
    ks += [_doc_kind(n, e, s) for n, e, s in edits]

    def huge(d: Path) -> str:
        p = d / "s.rlsession"
        with open(p, "wb") as f:
            f.truncate(65 << 20)  # sparse: costs nothing to write
        return _session_refused("too large")(d, p)

    ks.append(Kind("session-json", "document of 65 MB", huge))
    return ks


def _bad_values(p: Any) -> list[Any]:
    if p.kind is bool:
        return ["yes", 1, 0.5, [True]]
    if p.kind is str:
        return [5, True, ["a"]] + (["no-such-choice"] if p.choices else [])
    out: list[Any] = ["abc", True, [1], {"a": 1}, 1e14, -1e14, 10**40]
    if p.kind is int:
        out += [2.5]
    return out


def _accepts(p: Any, v: Any) -> bool:
    """Whether a session may hold ``v`` for the declared parameter ``p`` (strict JSON types,
    then the declared range)."""
    from restorelab.session import _strict_kind

    if not _strict_kind(p, v):
        return False
    try:
        p.validate(v)
    except (ValueError, OverflowError):
        return False
    return True


def _param_kind(kind: str, method: str, pname: str, value: Any, accepted: bool, family: str,
                field: str = "methods") -> Kind:
    def fn(d: Path) -> str:
        from restorelab.session import SessionError, load_session

        p = _saved(d)
        entry = {"kind": kind, "name": method, "params": {pname: value}, "sigma": None, "seed": None}
        _edit_doc(p, _set((field,), [entry]))
        if accepted:
            s = load_session(p)
            got = getattr(s, field)[0].params[pname]
            if got != value:
                raise Failed(f"loaded {got!r}, saved {value!r}")
            return "loaded (inside the declared range)"
        return _expect(lambda: load_session(p), SessionError, pname)

    return Kind(family, f"{kind}/{method}: {pname} = {str(value)[:24]}", fn)


def _session_param_kinds() -> list[Kind]:
    from restorelab import denoise
    from restorelab.edit import OPERATIONS
    from restorelab.prior import INVERSE_PARAMS, SAMPLER_PARAMS
    from restorelab.prior.operators import TASK_PARAMS

    groups: list[tuple[str, str, tuple[Any, ...]]] = []
    for n in denoise.names():
        groups.append(("denoise", n, tuple(denoise.get_class(n).params)))
    for n, decl in OPERATIONS.items():
        groups.append(("poisson", n, tuple(decl)))
    groups.append(("sampler", "sample", tuple(SAMPLER_PARAMS)))
    for t, decl in TASK_PARAMS.items():
        groups.append(("sampler", t, tuple(decl)))
    ks = []
    seen: set[tuple[str, str, str]] = set()
    for kind, method, decl in groups:
        for prm in decl:
            for v in _bad_values(prm):
                key = (kind, method, f"{prm.name}={v!r}")
                if key in seen:
                    continue
                seen.add(key)
                ks.append(_param_kind(kind, method, prm.name, v, _accepts(prm, v), "session-params"))
    for prm in INVERSE_PARAMS[:3]:
        ks.append(_param_kind("sampler", "inpaint", prm.name, 10**40, False, "session-params", "history"))
    for sigma in (1e9, -1.0, 2.0):
        def fn(d: Path, sigma: float = sigma) -> str:
            p = _saved(d)
            _edit_doc(p, _set(("methods", 0, "sigma"), sigma))
            return _session_refused("sigma")(d, p)

        ks.append(Kind("session-params", f"σ = {sigma:g}", fn))
    for seed in (10**40, -1, 2**63):
        def fn2(d: Path, seed: int = seed) -> str:
            p = _saved(d)
            _edit_doc(p, _set(("methods", 0, "seed"), seed))
            return _session_refused("seed")(d, p)

        ks.append(Kind("session-params", f"method seed = {str(seed)[:12]}", fn2))
    for solver in ("exact", 5):
        def fn3(d: Path, solver: Any = solver) -> str:
            p = _saved(d)
            _edit_doc(p, _set(("clones", 0, "params"), {"solver": solver}))
            return _session_refused("solver")(d, p)

        ks.append(Kind("session-params", f"clone solver = {solver!r}", fn3))
    return ks


def _path_kinds() -> list[Kind]:
    from restorelab.session import SessionError, load_session

    def refused_path(name: str, image_path: str | Callable[[Path], str], needle: str,
                     setup: Callable[[Path], Any] | None = None) -> Kind:
        def fn(d: Path) -> str:
            if setup is not None:
                setup(d)
            ip = image_path(d) if callable(image_path) else image_path
            p = _saved(d, image_path=ip, image_sha256="0" * 64)
            return _expect(lambda: load_session(p), SessionError, needle)

        return Kind("session-paths", name, fn)

    def outside(d: Path) -> None:
        (d / "sub").mkdir()
        (d.parent / f"{d.name}-outside.png").write_bytes(b"secret")

    def link_out(d: Path) -> None:
        outside(d)
        (d / "link.png").symlink_to(d.parent / f"{d.name}-outside.png")

    def fifo(d: Path) -> None:
        os.mkfifo(d / "pipe.png")

    ks = [
        refused_path("image path ../", lambda d: f"../{d.name}-outside.png", "leads out", outside),
        refused_path("image path ../../etc/passwd", "../../etc/passwd", "leads out"),
        refused_path("image path sub/../../", lambda d: f"sub/../../{d.name}-outside.png", "leads out",
                     outside),
        refused_path("image path a link leading out", "link.png", "leads out", link_out),
        refused_path("image path /dev/zero", "/dev/zero", "character device"),
        refused_path("image path /dev/urandom", "/dev/urandom", "character device"),
        refused_path("image path /dev/null", "/dev/null", "character device"),
        refused_path("image path a FIFO (relative)", "pipe.png", "FIFO", fifo),
        refused_path("image path a FIFO (absolute)", lambda d: str(d / "pipe.png"), "FIFO", fifo),
        refused_path("image path a folder", "sub", "a folder", lambda d: (d / "sub").mkdir()),
        refused_path("image path /", "/", "a folder"),
        refused_path("image path with NUL", "a\x00b.png", "NUL"),
    ]

    def ok_path(name: str, make: Callable[[Path], str], expect_missing: bool) -> Kind:
        def fn(d: Path) -> str:
            ip = make(d)
            p = _saved(d, image_path=ip, image_sha256=hashlib.sha256(b"photo").hexdigest())
            s = load_session(p)
            if s.image_missing != expect_missing or (not expect_missing and s.image_changed):
                raise Failed(f"missing={s.image_missing} changed={s.image_changed}")
            return "loaded" + (", image reported missing" if expect_missing else ", image hashed")

        return Kind("session-paths", name, fn)

    def inside(d: Path) -> str:
        (d / "photo.png").write_bytes(b"photo")
        return "photo.png"

    def absolute(d: Path) -> str:
        f = d.parent / f"{d.name}-mine.png"
        f.write_bytes(b"photo")
        return str(f)

    def relative_cwd_trap(d: Path) -> str:
        (d / "photo.png").write_bytes(b"photo")
        return "./photo.png"

    ks += [
        ok_path("image path relative, inside", inside, False),
        ok_path("image path ./ inside", relative_cwd_trap, False),
        ok_path("image path absolute, elsewhere", absolute, False),
        ok_path("image path missing", lambda d: "gone.png", True),
        ok_path("image path 300-byte name", lambda d: "a" * 300 + ".png", True),
    ]

    def side_kind(name: str, make: Callable[[Path, Path], Any], needle: str) -> Kind:
        def fn(d: Path) -> str:
            p = _saved(d)
            side = p.with_name(json.loads(p.read_text())["sidecar"]["file"])
            side.unlink()
            make(d, side)
            return _expect(lambda: load_session(p), SessionError, needle)

        return Kind("session-paths", name, fn)

    ks += [
        side_kind("sidecar is a FIFO", lambda d, s: os.mkfifo(s), "FIFO"),
        side_kind("sidecar is a folder", lambda d, s: s.mkdir(), "a folder"),
        side_kind("sidecar links to /dev/zero", lambda d, s: s.symlink_to("/dev/zero"), "character device"),
        side_kind("sidecar links to a folder", lambda d, s: s.symlink_to(d), "a folder"),
        side_kind("sidecar is a dangling link", lambda d, s: s.symlink_to(d / "nowhere"), "missing"),
    ]

    def doc_special(name: str, make: Callable[[Path], Path], needle: str) -> Kind:
        def fn(d: Path) -> str:
            return _expect(lambda: load_session(make(d)), SessionError, needle)

        return Kind("session-paths", name, fn)

    def doc_fifo(d: Path) -> Path:
        os.mkfifo(d / "pipe.rlsession")
        return d / "pipe.rlsession"

    ks += [
        doc_special("session file is a FIFO", doc_fifo, "FIFO"),
        doc_special("session file is /dev/zero", lambda d: Path("/dev/zero"), "character device"),
        doc_special("session file is /dev/urandom", lambda d: Path("/dev/urandom"), "character device"),
        doc_special("session file is a folder", lambda d: d, "a folder"),
        doc_special("session file missing", lambda d: d / "none.rlsession", "no session file"),
    ]
    return ks


def _bomb_kinds() -> list[Kind]:
    from restorelab.session import SessionError, load_session

    def declared(name: str, edit: Callable[[dict[str, Any]], Any], arrays: dict[str, np.ndarray] | None,
                 needle: str, env: dict[str, str] | None = None) -> Kind:
        def fn(d: Path) -> str:
            p = _saved(d)
            if arrays is not None:
                doc = json.loads(p.read_text())
                buf = io.BytesIO()
                np.savez_compressed(buf, **arrays)
                side = p.with_name(doc["sidecar"]["file"])
                side.write_bytes(buf.getvalue())
                doc["sidecar"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
                p.write_text(json.dumps(doc))
            _edit_doc(p, edit)
            with _env(env or {}):
                return _expect(lambda: load_session(p), SessionError, needle)

        return Kind("session-bombs", name, fn)

    def big_image(doc: dict[str, Any]) -> None:
        doc["image"]["shape"] = [6000, 6000, 3]
        for m in doc["masks"]:
            m["mask"]["shape"] = [6000, 6000]

    zeros = {"image": np.zeros((6000, 6000, 3), np.float32)}
    ks = [
        declared("zip bomb: 6000² RGB of zeros in 1 MB, budget 64 MB", big_image, zeros, "over the budget",
                 {"RESTORELAB_MAX_MEMORY": "64M"}),
        declared("zip bomb: member larger than declared", lambda doc: None,
                 {"image": np.zeros((3000, 3000, 3), np.float32)}, "corrupt"),
        declared("mask declared 99999²", _set(("masks", 0, "mask", "shape"), [99999, 99999]), None, "mask"),
        declared("image declared over the pixel limit", _set(("image", "shape"), [30000, 30000, 3]), None,
                 "over the limit"),
        declared("sampler samples declared 10^6", _set(("sampler_results", 0, "samples", "shape"),
                                                       [10**6, 8, 8, 3]), None, "over the budget"),
        declared("clone mask declared 2^31 elements", _set(("clones", 0, "mask", "shape"), [2**16, 2**16]),
                 None, ""),
    ]

    def members(n: int) -> Kind:
        def fn(d: Path) -> str:
            p = _saved(d)
            doc = json.loads(p.read_text())
            buf = io.BytesIO()
            import zipfile

            with zipfile.ZipFile(buf, "w") as z:
                for i in range(n):
                    z.writestr(f"x{i}.npy", b"\x93NUMPY")
            side = p.with_name(doc["sidecar"]["file"])
            side.write_bytes(buf.getvalue())
            doc["sidecar"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
            p.write_text(json.dumps(doc))
            return _expect(lambda: load_session(p), SessionError, "")

        return Kind("session-bombs", f"{n} undeclared zip members", fn)

    ks += [members(20000)]

    def header_lie(d: Path) -> str:
        p = _saved(d)

        def change(a: dict[str, np.ndarray]) -> None:
            a["image"] = np.zeros((12, 16, 3), np.float64)  # same bytes per element? no: twice

        _rewrite_arrays(p, change)
        return _expect(lambda: load_session(p), SessionError, "corrupt")

    def sparse_sidecar(d: Path) -> str:
        p = _saved(d)
        side = p.with_name(json.loads(p.read_text())["sidecar"]["file"])
        with open(side, "r+b") as f:
            f.truncate(3 << 30)
        return _expect(lambda: load_session(p), SessionError, "too large")

    ks += [Kind("session-bombs", "member header says float64", header_lie),
           Kind("session-bombs", "sidecar of 3 GB (sparse)", sparse_sidecar)]
    return ks


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _nan_kinds() -> list[Kind]:
    def k(name: str, change: Callable[[dict[str, np.ndarray]], Any], needle: str) -> Kind:
        def fn(d: Path) -> str:
            from restorelab.session import SessionError, load_session

            p = _saved(d)
            _rewrite_arrays(p, change)
            return _expect(lambda: load_session(p), SessionError, needle)

        return Kind("session-nan", name, fn)

    def put(key: str, v: float) -> Callable[[dict[str, np.ndarray]], None]:
        def change(a: dict[str, np.ndarray]) -> None:
            x = a[key].copy()
            x.flat[3] = v
            a[key] = x

        return change

    out = []
    for key, what in (("image", "working image"), ("mask/1", "soft mask"), ("sampler/0/mean", "sampler mean"),
                      ("sampler/0/std", "sampler std"), ("sampler/0/samples", "sampler samples")):
        for v, vn in ((np.nan, "NaN"), (np.inf, "+inf"), (-np.inf, "-inf")):
            out.append(k(f"{vn} in the {what}", put(key, v), "NaN or infinite"))
    out.append(k("soft mask value 2", put("mask/1", 2.0), "outside [0, 1]"))
    out.append(k("soft mask value -1", put("mask/1", -1.0), "outside [0, 1]"))

    def save_nan(d: Path) -> str:
        from restorelab.session import save_session

        s = _base_session()
        s.image[0, 0, 0] = np.nan
        r = _expect(lambda: save_session(d / "n.rlsession", s), ValueError, "NaN")
        if list(d.iterdir()):
            raise Failed(f"files left: {[x.name for x in d.iterdir()]}")
        return r

    out.append(Kind("session-nan", "saving a NaN working image", save_nan))
    return out


_NAMES = ("shot 1", "shot [1]", "shot?", "shot*", "shot[a-z]", "shot{1,2}", "shot\\1", "shot'1", 'shot"1',
          "shot~1", "shot é", "shot\n1", ".shot", "-shot", "shot 1.rlsession.x", "s" * 200, "shot\t1",
          "shot%s", "shot$HOME", "shot..")


def _name_kinds() -> list[Kind]:
    def fn(d: Path, name: str) -> str:
        from restorelab.session import load_session, save_session

        partners = ["shot 1", "shota", "shot1", name + "x", name[:-1] if len(name) > 1 else "z"]
        everyone = [name] + [q for q in partners if q != name]
        for i, q in enumerate(everyone):
            s = _base_session((6, 8))
            s.image[:] = i / 100
            s.masks = []
            s.clones = []
            s.sampler_results = []
            save_session(d / f"{q}.rlsession", s)
        for i, q in enumerate(everyone):
            s = load_session(d / f"{q}.rlsession")
            if float(s.image[0, 0]) != np.float32(i / 100):
                raise Failed(f"{q!r} reopened with another session's pixels")
        save_session(d / f"{name}.rlsession", load_session(d / f"{name}.rlsession"))  # saved again
        for q in everyone:
            load_session(d / f"{q}.rlsession")
        _no_temps(d)
        return f"{len(everyone)} sessions side by side keep their own pixels"

    return [Kind("session-names", f"name {n[:30]!r}", lambda d, n=n: fn(d, n)) for n in _NAMES]


# ----------------------------------------------------------------------------- models
def _model_kinds() -> list[Kind]:
    def header(name: str, md: dict[str, str], needle: str, tensors: dict[str, Any] | None = None) -> Kind:
        def fn(d: Path) -> str:
            import torch
            from safetensors.torch import save_file

            from restorelab.models.weights import FORMAT, load_model

            p = d / "m.safetensors"
            meta = {"format": FORMAT, "arch": "bfcnn", "channels": "1", "depth": "3", "width": "4", **md}
            t = tensors if tensors is not None else {"layers.0.conv.weight": torch.zeros(4, 1, 3, 3)}
            save_file(t, str(p), metadata={k: v for k, v in meta.items() if v is not None})
            return _expect(lambda: load_model(p), ValueError, needle)

        return Kind("model-headers", name, fn)

    ks = [
        header("width 700", {"width": "700", "depth": "40"}, "over the limit"),
        header("width 8000", {"width": "8000"}, "out of range"),
        header("width 8000, depth 100", {"width": "8000", "depth": "100"}, "out of range"),
        header("depth 100000000", {"depth": "100000000"}, "out of range"),
        header("depth 2", {"depth": "2"}, "out of range"),
        header("width 0", {"width": "0"}, "out of range"),
        header("width -5", {"width": "-5"}, "out of range"),
        header("channels 0", {"channels": "0"}, "out of range"),
        header("channels 2", {"channels": "2"}, "1 or 3"),
        header("channels 4", {"channels": "4"}, "out of range"),
        header("arch unknown", {"arch": "transformer"}, "unknown architecture"),
        header("arch missing", {"arch": None}, "missing"),
        header("width missing", {"width": None}, "missing"),
        header("width text", {"width": "wide"}, "not a number"),
        header("width 4.5", {"width": "4.5"}, "not an integer"),
        header("width inf", {"width": "inf"}, "not an integer"),
        header("width 1e400", {"width": "1e400"}, "not an integer"),
        header("bfunet depth 8 width 512", {"arch": "bfunet", "depth": "8", "width": "512"},
               "over the limit"),
        header("bfunet depth 100", {"arch": "bfunet", "depth": "100"}, "out of range"),
        header("sigma_max 1e9", {"sigma_max": "1e9"}, "sigma_max"),
        header("sigma_min -1", {"sigma_min": "-1"}, "sigma_min"),
        header("steps -3", {"steps": "-3"}, "steps"),
        header("batch 0", {"batch": "0"}, "batch"),
        header("seed 10^40", {"seed": "1" + "0" * 40}, "seed"),
        header("format foreign", {"format": "other"}, "not a restorelab"),
        header("tensors of another width", {}, "names"),
    ]

    def mismatched(d: Path) -> str:
        import torch
        from safetensors.torch import save_file

        from restorelab.models import build_model
        from restorelab.models.weights import load_model, read_metadata, save_model

        p = save_model(d / "m.safetensors", build_model("bfcnn", 1, 3, 4))
        md = read_metadata(p)
        state = {k: torch.zeros(64, 64, 3, 3) if "layers.1.conv" in k else v
                 for k, v in build_model("bfcnn", 1, 3, 4).state_dict().items()}
        save_file(state, str(p), metadata=md)
        return _expect(lambda: load_model(p), ValueError, "shape")

    def wrong_dtype(d: Path) -> str:
        from safetensors.torch import save_file

        from restorelab.models import build_model
        from restorelab.models.weights import load_model, read_metadata, save_model

        p = save_model(d / "m.safetensors", build_model("bfcnn", 1, 3, 4))
        md = read_metadata(p)
        save_file({k: v.double() for k, v in build_model("bfcnn", 1, 3, 4).state_dict().items()}, str(p),
                  metadata=md)
        return _expect(lambda: load_model(p), ValueError, "dtype")

    def nan_weight(d: Path) -> str:
        from safetensors.torch import save_file

        from restorelab.models import build_model
        from restorelab.models.weights import load_model, read_metadata, save_model

        p = save_model(d / "m.safetensors", build_model("bfcnn", 1, 3, 4))
        st = build_model("bfcnn", 1, 3, 4).state_dict()
        st["layers.0.conv.weight"][0, 0, 0, 0] = float("nan")
        save_file(st, str(p), metadata=read_metadata(p))
        return _expect(lambda: load_model(p), ValueError, "NaN")

    def truncated(d: Path) -> str:
        from restorelab.models import build_model
        from restorelab.models.weights import load_model, save_model

        p = save_model(d / "m.safetensors", build_model("bfcnn", 1, 3, 4))
        p.write_bytes(p.read_bytes()[:200])
        return _expect(lambda: load_model(p), ValueError, "m.safetensors")

    def fifo(d: Path) -> str:
        from restorelab.models.weights import load_model

        os.mkfifo(d / "m.safetensors")
        return _expect(lambda: load_model(d / "m.safetensors"), ValueError, "not a regular file")

    def huge_file(d: Path) -> str:
        from restorelab.models.weights import load_model

        p = d / "m.safetensors"
        with open(p, "wb") as f:
            f.truncate(1 << 40)
        return _expect(lambda: load_model(p), ValueError, "larger than any model")

    def header_length_lie(d: Path) -> str:
        from restorelab.models.weights import load_model

        p = d / "m.safetensors"
        p.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
        return _expect(lambda: load_model(p), ValueError, "m.safetensors")

    def round_trip(d: Path) -> str:
        import torch

        from restorelab.models import build_model
        from restorelab.models.weights import load_model, save_model

        net = build_model("bfunet", 3, 2, 4)
        p = save_model(d / "m.safetensors", net)
        save_model(p, net)
        m, _ = load_model(p)
        if not all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), m.state_dict().values(),
                                                     strict=True)):
            raise Failed("weights changed in a round trip")
        _no_temps(d)
        return "saved twice atomically, loaded identical"

    ks += [Kind("model-headers", n, f) for n, f in (
        ("tensor of another shape (64x64 kernels)", mismatched), ("float64 tensors", wrong_dtype),
        ("NaN weight", nan_weight), ("truncated file", truncated), ("a FIFO", fifo),
        ("1 TB file (sparse)", huge_file), ("header length 2^60", header_length_lie),
        ("valid model round trip", round_trip))]
    return ks


# ----------------------------------------------------------------------------- TIFF photometric
def _tiff_kinds() -> list[Kind]:
    from restorelab.io import ImageError, load_image

    r = np.random.default_rng(3)
    g8 = r.integers(0, 256, (6, 7), dtype=np.uint8)
    g16 = r.integers(0, 65536, (6, 7), dtype=np.uint16)
    cmyk8 = r.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    cmyk16 = r.integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    idx = r.integers(0, 4, (6, 7), dtype=np.uint8)
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, :4] = np.array([[0, 65535, 0, 32768], [0, 0, 65535, 32768], [65535, 0, 0, 32768]])

    def good(name: str, write: Callable[[Path], Any], expect: np.ndarray, tol: float = 1e-6) -> Kind:
        def fn(d: Path) -> str:
            p = d / "t.tif"
            write(p)
            a = load_image(p)
            if a.shape != expect.shape or not np.allclose(a, expect, atol=tol):
                err = float(np.abs(a - expect).max()) if a.shape == expect.shape else a.shape
                raise Failed(f"wrong pixels: {a.shape} vs {expect.shape}, max error {err}")
            return "converted as TIFF 6.0 says"

        return Kind("tiff-photometric", name, fn)

    def tw(a: np.ndarray, **kw: Any) -> Callable[[Path], Any]:
        import tifffile

        return lambda p: tifffile.imwrite(p, a, **kw)

    def cmyk_rgb(c: np.ndarray, top: float) -> np.ndarray:
        f = c.astype(np.float64) / top
        return ((1 - f[..., :3]) * (1 - f[..., 3:4])).astype(np.float32)

    ks = [
        good("MinIsWhite 8-bit", tw(g8, photometric="miniswhite"), (255 - g8) / 255.0),
        good("MinIsWhite 16-bit", tw(g16, photometric="miniswhite"), (65535 - g16) / 65535.0),
        good("MinIsWhite float32", tw((g8 / 255).astype(np.float32), photometric="miniswhite"),
             1 - g8 / 255.0),
        good("MinIsBlack 8-bit", tw(g8, photometric="minisblack"), g8 / 255.0),
        good("palette 8-bit", tw(idx, photometric="palette", colormap=cmap),
             np.moveaxis(cmap[:, idx], 0, -1) / 65535.0, 1e-4),
        good("CMYK 8-bit", tw(cmyk8, photometric="separated"), cmyk_rgb(cmyk8, 255.0), 1e-5),
        good("CMYK 16-bit", tw(cmyk16, photometric="separated"), cmyk_rgb(cmyk16, 65535.0), 1e-5),
        good("RGB 8-bit", tw(cmyk8[..., :3], photometric="rgb"), cmyk8[..., :3] / 255.0),
        good("gray + alpha 8-bit", tw(cmyk8[..., :2], photometric="minisblack", extrasamples=("unassalpha",),
                                      planarconfig="contig"),
             np.concatenate([np.repeat(cmyk8[..., :1], 3, 2), cmyk8[..., 1:2]], 2) / 255.0),
        good("1-bit MinIsBlack", tw(g8 > 127, photometric="minisblack"), (g8 > 127).astype(np.float32)),
    ]

    def bad(name: str, write: Callable[[Path], Any], needle: str) -> Kind:
        def fn(d: Path) -> str:
            p = d / "t.tif"
            write(p)
            return _expect(lambda: load_image(p), ImageError, needle)

        return Kind("tiff-photometric", name, fn)

    ks += [
        bad("YCbCr without JPEG", tw(cmyk8[..., :3], photometric="ycbcr", subsampling=(1, 1)), "YCbCr"),
        bad("CIELab", tw(cmyk8[..., :3], photometric="cielab"), "CIELAB"),
        bad("separated with InkSet 2 (not CMYK)", tw(cmyk8, photometric="separated",
                                                     extratags=[(332, "H", 1, 2, True)]), "ink set 2"),
        bad("separated with 5 samples", tw(np.concatenate([cmyk8, cmyk8[..., :1]], 2),
                                           photometric="separated", extrasamples=(0,)), "samples per pixel"),
        bad("RGB with 6 samples", tw(np.concatenate([cmyk8, cmyk8[..., :2]], 2), photometric="rgb",
                                     extrasamples=(0, 0, 0)), "samples per pixel"),
        bad("int32 samples", tw(g8.astype(np.int32), photometric="minisblack"), "sample type"),
        bad("uint32 samples", tw(g8.astype(np.uint32), photometric="minisblack"), "sample type"),
        bad("complex samples", tw(g8.astype(np.complex64), photometric="minisblack"), "sample type"),
    ]
    return ks


# ----------------------------------------------------------------------------- image bombs
def _png(width: int, height: int, depth: int, ctype: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _image_bomb_kinds() -> list[Kind]:
    from restorelab.io import ImageError, load_image

    def refused(name: str, data: bytes | Callable[[Path], Any], ext: str, needle: str) -> Kind:
        def fn(d: Path) -> str:
            p = d / f"b{ext}"
            if callable(data):
                data(p)
            else:
                p.write_bytes(data)
            with _env({"RESTORELAB_MAX_MEMORY": "2G"}):
                return _expect(lambda: load_image(p), ImageError, needle)

        return Kind("image-bombs", name, fn)

    def npy(shape: str, descr: str = "<f4") -> bytes:
        h = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
        h += b" " * (63 - len(h) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + b"\0" * 64

    def jpeg(w: int, h: int) -> bytes:
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
        return b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\0" * 16 + b"\xff\xd9"

    def tiff_huge(p: Path) -> None:
        import tifffile

        tifffile.imwrite(p, np.zeros((8, 8), np.uint16))
        b = bytearray(p.read_bytes())
        (ifd,) = struct.unpack("<I", b[4:8])
        (n,) = struct.unpack("<H", b[ifd:ifd + 2])
        for k in range(n):
            e = ifd + 2 + 12 * k
            tag, typ = struct.unpack("<HH", b[e:e + 4])
            if tag in (256, 257):
                b[e + 2:e + 4] = struct.pack("<H", 4)
                b[e + 8:e + 12] = struct.pack("<I", 14000)
        p.write_bytes(bytes(b))

    ks = [
        refused("PNG 14000² 16-bit RGBA header (1.5 MB class)",
                _png(14000, 14000, 16, 6, zlib.compress(b"\0" * 99)),
                ".png", "over the budget"),
        refused("PNG 30000² header (over the pixel limit)", _png(30000, 30000, 8, 0, zlib.compress(b"\0")),
                ".png", "over the limit"),
        refused("PNG 2^31 wide", _png(2**31 - 1, 1, 8, 0, zlib.compress(b"\0")), ".png", "over the limit"),
        refused("JPEG 65535² header", jpeg(65535, 65535), ".jpg", "over the limit"),
        refused(".npy shape (100000, 100000)", npy("(100000, 100000)"), ".npy", "over the limit"),
        refused(".npy shape (2^62, 4)", npy("(4611686018427387904, 4)"), ".npy", ""),
        refused(".npy of objects", npy("(4, 4)", "|O"), ".npy", "objects"),
        refused("TIFF 14000² 16-bit header", tiff_huge, ".tif", ""),
    ]

    def real_bomb(d: Path) -> str:
        """8000² 8-bit gray zeros: 64 MB of pixels in a ~70 kB PNG, inside the limits: it loads."""
        import cv2

        p = d / "z.png"
        ok, buf = cv2.imencode(".png", np.zeros((8000, 8000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        assert ok
        p.write_bytes(buf.tobytes())
        a = load_image(p)
        if a.shape != (8000, 8000) or float(a.max()) != 0.0:
            raise Failed(f"wrong result {a.shape}")
        return f"{len(buf) // 1024} kB file loaded as 8000x8000 within the budget"

    ks.append(Kind("image-bombs", "PNG bomb 8000² zeros (inside the limits)", real_bomb))
    return ks


# ----------------------------------------------------------------------------- FIFOs, long names
def _fifo_kinds() -> list[Kind]:
    from restorelab.io import ImageError, image_info, load_image, load_mask

    def fifo_kind(name: str, call: Callable[[Path], Any], types: Any, needle: str, ext: str = ".png") -> Kind:
        def fn(d: Path) -> str:
            f = d / f"pipe{ext}"
            os.mkfifo(f)
            return _expect(lambda: call(f), types, needle)

        return Kind("fifos", name, fn)

    def dev_kind(name: str, call: Callable[[Path], Any], types: Any, dev: str) -> Kind:
        return Kind("fifos", name, lambda d: _expect(lambda: call(Path(dev)), types, "character device"))

    from restorelab.session import SessionError, load_session

    ks = [
        fifo_kind("load_image on a FIFO", load_image, ImageError, "FIFO"),
        fifo_kind("load_mask on a FIFO", load_mask, ImageError, "FIFO"),
        fifo_kind("image_info on a FIFO", image_info, ImageError, "FIFO"),
        fifo_kind("load_image on a FIFO named .tif", load_image, ImageError, "FIFO", ".tif"),
        fifo_kind("load_session on a FIFO", load_session, SessionError, "FIFO", ".rlsession"),
        dev_kind("load_image on /dev/zero", load_image, ImageError, "/dev/zero"),
        dev_kind("load_image on /dev/urandom", load_image, ImageError, "/dev/urandom"),
        dev_kind("load_mask on /dev/zero", load_mask, ImageError, "/dev/zero"),
        dev_kind("load_session on /dev/urandom", load_session, SessionError, "/dev/urandom"),
        Kind("fifos", "load_image on a folder",
             lambda d: _expect(lambda: load_image(d), ImageError, "folder")),
    ]
    return ks


def _long_name_kinds() -> list[Kind]:
    from restorelab.io import ImageError, load_image, save_image
    from restorelab.session import SessionError, load_session, save_session

    img = np.zeros((4, 4), np.float32)
    names = {"256 bytes": "a" * 252 + ".png", "300 bytes": "b" * 296 + ".png",
             "256 bytes in é (2-byte)": "é" * 126 + ".png", "4096 bytes": "c" * 4092 + ".png"}
    ks = []
    for label, n in names.items():
        ks.append(Kind("long-names", f"load_image, {label}",
                       lambda d, n=n: _expect(lambda: load_image(d / n), ImageError, "too long")))
        ks.append(Kind("long-names", f"save_image, {label}",
                       lambda d, n=n: _expect(lambda: save_image(d / n, img), ImageError, "too long")))
        sn = n[:-4] + ".rlsession"

        def save_long(d: Path, sn: str = sn) -> str:
            r = _expect(lambda: save_session(d / sn, _base_session()), OSError, "")
            if list(d.iterdir()):
                raise Failed(f"files left: {[x.name[:40] for x in d.iterdir()]}")
            return r

        ks.append(Kind("long-names", f"save_session, {label}", save_long))
        ks.append(Kind("long-names", f"load_session, {label}",
                       lambda d, sn=sn: _expect(lambda: load_session(d / sn), SessionError, "")))

    def exactly_255(d: Path) -> str:
        p = save_image(d / ("e" * 251 + ".png"), img)
        if load_image(p).shape != (4, 4):
            raise Failed("255-byte name did not round trip")
        s = save_session(d / ("f" * 224 + ".rlsession"), _base_session())  # 234 bytes: its sidecar 255
        load_session(s)
        _no_temps(d)
        return "a 255-byte image name and a 234-byte session name save and load"

    def session_255(d: Path) -> str:
        r = _expect(lambda: save_session(d / ("f" * 245 + ".rlsession"), _base_session()), OSError,
                    "at most 234 bytes")
        if list(d.iterdir()):
            raise Failed(f"files left: {[x.name[:40] for x in d.iterdir()]}")
        return r

    ks.append(Kind("long-names", "session name of 255 bytes (its sidecar would not fit)", session_255))

    ks.append(Kind("long-names", "exactly 255 bytes", exactly_255))
    return ks


# ----------------------------------------------------------------------------- command line
def _cli_kinds() -> list[Kind]:
    def cli(name: str, argv: Callable[[Path], list[str]], needle: str, outputs: tuple[str, ...] = ("o.png",),
            setup: Callable[[Path], Any] | None = None) -> Kind:
        def fn(d: Path) -> str:
            import sys

            from restorelab.cli import main
            from restorelab.io import save_image

            save_image(d / "in.png", np.random.default_rng(0).random((32, 32), dtype=np.float32))
            if setup is not None:
                setup(d)
            err = io.StringIO()
            old = sys.stderr
            sys.stderr = err
            try:
                try:
                    rc = main([str(a) for a in argv(d)] + ["-q"])
                except SystemExit as e:
                    rc = e.code
            finally:
                sys.stderr = old
            text = err.getvalue()
            if "Traceback" in text:
                raise Failed(f"a traceback on stderr: {text[-200:]}")
            lines = [x for x in text.strip().splitlines() if x]
            if lines and lines[0].startswith("usage:"):  # argparse's own refusal: usage, then one error line
                lines = lines[-1:]
            if rc != 2 or len(lines) != 1 or needle not in lines[0]:
                raise Failed(f"exit {rc}, stderr {text[:200]!r}")
            made = [o for o in outputs if os.path.lexists(d / o) and o != "in.png"]
            if made:
                raise Failed(f"outputs written: {made}")
            _no_temps(d)
            return lines[0][:100]

        return Kind("cli", name, fn)

    def fifo(d: Path) -> None:
        os.mkfifo(d / "pipe.png")

    return [
        cli("sample --size 100000,100000", lambda d: ["sample", d / "o.png", "--method", "heat", "--size",
                                                      "100000,100000"], "between 4 and 4096"),
        cli("sample --size 20000,20000", lambda d: ["sample", d / "o.png", "--method", "heat", "--size",
                                                    "20000,20000"], "between 4 and 4096"),
        cli("sample --size 4096,4096 --samples 256", lambda d: ["sample", d / "o.png", "--method", "heat",
                                                                "--size", "4096,4096", "--samples", "256"],
            "memory"),
        cli("decompose --levels 100000", lambda d: ["decompose", d / "in.png", d / "dec", "--method", "heat",
                                                    "--levels", "100000"], "--levels", ("dec",)),
        cli("noise --sigma 1e9", lambda d: ["noise", d / "in.png", d / "o.png", "--sigma", "1e9"],
            "between 0 and 255"),
        cli("denoise --sigma 1e9", lambda d: ["denoise", d / "in.png", d / "o.png", "--method", "tv",
                                              "--sigma", "1e9"], "between 0 and 255"),
        cli("denoise --sigma -1", lambda d: ["denoise", d / "in.png", d / "o.png", "--method", "tv",
                                             "--sigma", "-1"], "between 0 and 255"),
        cli("denoise --param max_iter=1e14", lambda d: ["denoise", d / "in.png", d / "o.png", "--method",
                                                        "tv",
                                                        "--sigma", "10", "--param", "max_iter=1e14"],
            "out of range"),
        cli("denoise --param lam=abc", lambda d: ["denoise", d / "in.png", d / "o.png", "--method", "tv",
                                                  "--sigma", "10", "--param", "lam=abc"], "lam"),
        cli("inverse --log OUT (same as the output)", lambda d: ["inverse", d / "in.png", d / "o.png",
                                                                 "--method", "heat", "--task", "inpaint",
                                                                 "--log", d / "o.png"], "o.png"),
        cli("inverse --degraded OUT (same as the output)", lambda d: ["inverse", d / "in.png", d / "o.png",
                                                                      "--method", "heat", "--task", "inpaint",
                                                                      "--degraded", d / "o.png"], "o.png"),
        cli("sample --log OUT (same as the output)", lambda d: ["sample", d / "o.png", "--method", "heat",
                                                                "--log", d / "o.png"], "o.png"),
        cli("denoise from a FIFO", lambda d: ["denoise", d / "pipe.png", d / "o.png", "--method", "tv",
                                              "--sigma", "10"], "FIFO", setup=fifo),
        cli("denoise from /dev/zero", lambda d: ["denoise", "/dev/zero", d / "o.png", "--method", "tv",
                                                 "--sigma", "10"], "character device"),
        cli("noise to a 300-byte name", lambda d: ["noise", d / "in.png", d / ("a" * 300 + ".png"),
                                                   "--sigma", "5"], "too long"),
        cli("noise from a missing file", lambda d: ["noise", d / "none.png", d / "o.png", "--sigma", "5"],
            "no such file"),
        cli("noise into a missing folder", lambda d: ["noise", d / "in.png", d / "no" / "o.png", "--sigma",
                                                      "5"],
            "does not exist"),
        cli("noise onto its input", lambda d: ["noise", d / "in.png", d / "in.png", "--sigma", "5"],
            "in.png"),
        cli("inverse --box 0", lambda d: ["inverse", d / "in.png", d / "o.png", "--method", "heat", "--task",
                                          "inpaint", "--box", "0"], "--box"),
        cli("inverse --factor 64 on 32²", lambda d: ["inverse", d / "in.png", d / "o.png", "--method", "heat",
                                                     "--task", "sr", "--factor", "64"], "16"),
    ]


# ----------------------------------------------------------------------------- catalogue
_BUILDERS: tuple[tuple[str, Callable[[], list[Kind]]], ...] = (
    ("session-json", _session_json_kinds),
    ("session-params", _session_param_kinds),
    ("session-paths", _path_kinds),
    ("session-bombs", _bomb_kinds),
    ("session-nan", _nan_kinds),
    ("session-names", _name_kinds),
    ("model-headers", _model_kinds),
    ("tiff-photometric", _tiff_kinds),
    ("image-bombs", _image_bomb_kinds),
    ("fifos", _fifo_kinds),
    ("long-names", _long_name_kinds),
    ("cli", _cli_kinds),
)


def families() -> list[str]:
    """The family names, in the order they run."""
    return [f for f, _ in _BUILDERS]


def catalogue(family: str) -> list[Kind]:
    """The kinds of one family (deterministic order)."""
    for f, build in _BUILDERS:
        if f == family:
            return build()
    raise ValueError(f"unknown family {family!r}; known: {', '.join(families())}")


DOCUMENTED = ("Failed",)


def run_kind(kind: Kind, workdir: Path) -> tuple[str, str]:
    """Run one kind in an empty folder: ``("clean"|"failed"|"traceback", detail)``."""
    import traceback

    try:
        detail = kind.fn(workdir)
        _no_temps(workdir)
    except Failed as e:
        return "failed", str(e)[:300]
    except Exception as e:  # noqa: BLE001 - an undocumented exception is what is measured
        return "traceback", f"{type(e).__name__}: {str(e)[:200]}\n" + traceback.format_exc(limit=-4)[-600:]
    return "clean", detail


# ----------------------------------------------------------------------------- running
@dataclass
class FamilyResult:
    family: str
    kinds: int = 0
    clean: int = 0
    failed: int = 0
    hangs: int = 0
    tracebacks: int = 0
    peak_rss_mb: float = 0.0
    slowest_s: float = 0.0
    problems: list[tuple[str, str, str]] | None = None  # (kind, outcome, detail)

    def row(self) -> list[Any]:
        return [self.family, self.kinds, self.clean, self.failed, self.hangs, self.tracebacks,
                f"{self.peak_rss_mb:.0f}", f"{self.slowest_s * 1000:.0f}"]


HEADER = ["family", "kinds tried", "clean", "failed (wrong data, other error, leftover)", "hangs",
          "raw tracebacks", "peak RSS (MB)", "slowest kind (ms)"]


def _peak_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``,
    which Linux carries over from the parent that spawned the worker)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _family_worker(conn: Any, family: str, start: int) -> None:
    import logging
    import shutil
    import tempfile
    import time
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass
    kinds = catalogue(family)
    base = Path(tempfile.mkdtemp(prefix="rl-hostile-"))
    conn.send(("ready", len(kinds)))
    try:
        for i in range(start, len(kinds)):
            d = base / f"k{i}"
            d.mkdir()
            t0 = time.perf_counter()
            outcome, detail = run_kind(kinds[i], d)
            dt = time.perf_counter() - t0
            shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(OSError):  # files a kind put beside its folder
                for x in base.iterdir():
                    if x.name.startswith(f"k{i}-"):
                        x.unlink()
            conn.send((i, kinds[i].name, outcome, detail, dt))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    conn.send(("end", _peak_mb()))


def run_family(family: str, *, timeout_s: float = 30.0, rss_limit_mb: float = 3072.0,
               on_kind: Callable[[str, str, str, str], Any] | None = None) -> FamilyResult:
    """Run every kind of ``family`` in a watched worker process (restarted after a hang or a
    death); see the module docstring."""
    import multiprocessing as mp
    import time
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    res = FamilyResult(family, problems=[])
    names = [k.name for k in catalogue(family)]
    res.kinds = len(names)
    nxt = 0
    while nxt < len(names):
        a, b = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_family_worker, args=(b, family, nxt), daemon=True)
        proc.start()
        b.close()
        started, last = time.monotonic(), None
        ended = False
        while True:
            wait([a], timeout=0.2)
            try:
                while a.poll():
                    msg = a.recv()
                    if msg[0] == "ready":
                        last = time.monotonic()
                    elif msg[0] == "end":
                        res.peak_rss_mb = max(res.peak_rss_mb, float(msg[1]))
                        ended = True
                    else:
                        i, name, outcome, detail, dt = msg
                        res.slowest_s = max(res.slowest_s, dt)
                        if outcome == "clean":
                            res.clean += 1
                        elif outcome == "failed":
                            res.failed += 1
                        else:
                            res.tracebacks += 1
                        if outcome != "clean":
                            res.problems.append((name, outcome, detail))
                        if on_kind is not None:
                            on_kind(family, name, outcome, detail)
                        nxt = i + 1
                        last = time.monotonic()
            except (EOFError, OSError):
                pass
            if ended:
                proc.join(10)
                break
            now = time.monotonic()
            rss = _rss_mb(proc.pid) if proc.is_alive() else 0.0
            res.peak_rss_mb = max(res.peak_rss_mb, rss)
            if last is None and now - started > 300:
                proc.kill()
                raise RuntimeError(f"the {family} worker did not start within 300 s")
            stalled = last is not None and now - last > timeout_s
            if stalled or rss > rss_limit_mb or not proc.is_alive():
                if proc.is_alive():
                    proc.kill()
                proc.join(10)
                if nxt < len(names):
                    why = ("hang" if stalled else "failed")
                    detail = (f"no answer within {timeout_s:g} s" if stalled else
                              f"resident memory {rss:.0f} MB over {rss_limit_mb:.0f} MB" if rss > rss_limit_mb
                              else f"worker died (exit code {proc.exitcode})")
                    if why == "hang":
                        res.hangs += 1
                    else:
                        res.failed += 1
                    res.problems.append((names[nxt], why, detail))
                    if on_kind is not None:
                        on_kind(family, names[nxt], why, detail)
                    nxt += 1
                break
        a.close()
    return res


def run_families(selected: list[str] | None = None, *, timeout_s: float = 30.0,
                 on_kind: Callable[[str, str, str, str], Any] | None = None) -> list[FamilyResult]:
    """Every family (or ``selected``), one after the other."""
    return [run_family(f, timeout_s=timeout_s, on_kind=on_kind) for f in (selected or families())]


def families_markdown(results: list[FamilyResult], command: str, wall_s: float) -> str:
    """The BENCHMARKS.md table of a run of the hostile families."""
    from restorelab.bench.report import markdown_table

    tot = FamilyResult("**total**", problems=[])
    for r in results:
        tot.kinds += r.kinds
        tot.clean += r.clean
        tot.failed += r.failed
        tot.hangs += r.hangs
        tot.tracebacks += r.tracebacks
        tot.peak_rss_mb = max(tot.peak_rss_mb, r.peak_rss_mb)
        tot.slowest_s = max(tot.slowest_s, r.slowest_s)
    lines = [
        f"`{command}` — hostile-input families (`restorelab/bench/hostile.py`): {tot.kinds} kinds in "
        f"{wall_s:.0f} s, **{tot.clean} clean, {tot.failed} failed, {tot.hangs} hangs, {tot.tracebacks} raw "
        f"tracebacks**, peak resident memory of any family's worker {tot.peak_rss_mb:.0f} MB (the worker's "
        "whole process, imports included). A kind is clean when the documented outcome happened (the "
        "documented error naming the problem, or correct pixels) and no temporary file was left. The "
        "slowest kind of a family includes its worker's first imports.",
        "",
        markdown_table(HEADER, [r.row() for r in results] + [tot.row()]),
        "",
    ]
    for r in results:
        for name, outcome, detail in (r.problems or [])[:5]:
            first = detail.splitlines()[0][:150] if detail else ""
            lines.append(f"- {r.family} / {name}: {outcome}: `{first}`")
    return "\n".join(lines)

"""Fault injection: out of memory, full disk, read-only folder, kills, concurrent saves, crashes.

``restorelab bench faults`` runs every scenario below and prints one line per scenario with
what is expected and what was observed:

- a CUDA out-of-memory error (simulated with ``torch.cuda.OutOfMemoryError`` where there is
  no GPU) during a denoise falls back to tiles, then to the CPU, with a message
  (:func:`restorelab.safety.denoise_with_fallback`);
- a full disk during a save (a real kernel write failure: the file-size limit
  ``RLIMIT_FSIZE`` in a child process, and a simulated ``ENOSPC`` from ``fsync``) and a
  read-only folder (real ``chmod`` when not root, simulated ``EACCES`` as root, since root
  ignores permissions) leave the previous file intact, for sessions and images;
- a process killed with SIGKILL at random moments while it saves (a session, one whose
  name holds glob characters beside a sibling, an image, a model) leaves the previous or the
  new file complete, never a half-written one, and the next save leaves no temporary file;
- two processes saving one session while a third reads it: no error, one complete session;
- any scenario that leaves a temporary file (:func:`restorelab.safety.stale_temps` with
  ``include_live``) or a lock file fails;
- a process killed in the middle of a job leaves an autosave that :class:`Autosaver`
  offers for recovery and that loads with the last completed result.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

__all__ = ["FaultResult", "run_faults", "SCENARIOS"]


@dataclass
class FaultResult:
    name: str
    expected: str
    observed: str
    ok: bool


def _py(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    e = dict(os.environ)
    e.update(env or {})
    root = str(Path(__file__).resolve().parents[2])
    e["PYTHONPATH"] = root + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _session(i: int, big: bool = False) -> Any:
    from restorelab.session import MaskLayer, MethodChoice, Session

    r = np.random.default_rng(i)
    h = 512 if big else 48
    img = r.random((h, h, 3), dtype=np.float32)
    m = r.random((h, h)) > 0.5
    return Session(image=img, masks=[MaskLayer("m", m)],
                   methods=[MethodChoice("denoise", "tv", {"max_iter": 10 + i})],
                   extra={"i": i}, session_id="a" * 32)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _visible_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not p.name.startswith("."))


# ----------------------------------------------------------------------------- out of memory
def _oom_denoiser(limit_px: int, oom_on_cpu: bool = False) -> Any:
    from scipy.ndimage import gaussian_filter

    from restorelab.denoise.base import Denoiser

    class OOMSim(Denoiser):
        """Gaussian smoothing that 'runs out of GPU memory' above ``limit_px`` pixels."""

        name = "oom-sim"
        calls: list[tuple[str, int]] = []

        def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
            import torch

            npx = x.shape[0] * x.shape[1]
            OOMSim.calls.append((str(self.device), npx))
            if (self.device != "cpu" and npx > limit_px) or oom_on_cpu:
                raise torch.cuda.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate {npx * 4 * 64 / 2**20:.2f} MiB (simulated)")
            return gaussian_filter(x, sigma=(1.5, 1.5, 0), mode="reflect").astype(np.float32)

    return OOMSim


def scenario_oom_tiles() -> FaultResult:
    from restorelab.safety import denoise_with_fallback

    cls = _oom_denoiser(limit_px=128 * 128)
    y = np.random.default_rng(0).random((300, 260), dtype=np.float32)
    msgs: list[str] = []
    out = denoise_with_fallback(cls(device="cuda"), y, 0.1, tile=128, overlap=32, on_message=msgs.append)
    ref = cls(device="cpu")(y, 0.1)
    err = float(np.abs(out - ref).max())
    ok = len(msgs) == 1 and "in tiles" in msgs[0] and err < 1e-4
    return FaultResult("CUDA out of memory → tiles", "tiled result = full result, one message",
                       f"message {msgs!r}; max |tiled − full| = {err:.1e}", ok)


def scenario_oom_cpu() -> FaultResult:
    from restorelab.safety import denoise_with_fallback

    cls = _oom_denoiser(limit_px=0)  # even a tile is too large on the 'GPU'
    y = np.random.default_rng(1).random((150, 150, 3), dtype=np.float32)
    msgs: list[str] = []
    out = denoise_with_fallback(cls(device="cuda"), y, 0.1, tile=96, on_message=msgs.append)
    ref = cls(device="cpu")(y, 0.1)
    err = float(np.abs(out - ref).max())
    ok = len(msgs) == 2 and "on the CPU" in msgs[1] and err < 1e-4
    return FaultResult("CUDA out of memory → CPU", "CPU result, messages for tiles then CPU",
                       f"messages {[m.split(';')[-1].strip() for m in msgs]}; max error {err:.1e}", ok)


def scenario_oom_everywhere() -> FaultResult:
    from restorelab.safety import OOMFallbackFailed, denoise_with_fallback

    cls = _oom_denoiser(limit_px=0, oom_on_cpu=True)
    y = np.zeros((64, 64), np.float32)
    try:
        denoise_with_fallback(cls(device="cuda"), y, 0.1, tile=32, on_message=lambda m: None)
    except OOMFallbackFailed as e:
        return FaultResult("out of memory everywhere", "one clear error, no crash",
                           f"OOMFallbackFailed: {str(e)[:90]}…", "out of memory" in str(e))
    return FaultResult("out of memory everywhere", "one clear error", "no error raised", False)


# ----------------------------------------------------------------------------- full disk / read-only
@contextlib.contextmanager
def _enospc_on_fsync() -> Iterator[None]:
    def fail(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    with mock.patch("os.fsync", fail):
        yield


def _check_previous_intact(
    kind: str, path: Path, before: str, reader: Callable[[Path], str]
) -> tuple[bool, str]:
    try:
        now = reader(path)
    except Exception as e:  # noqa: BLE001
        return False, f"previous {kind} unreadable: {e}"
    leftovers = _leftovers(path)
    ok = now == before and not leftovers
    return ok, ("previous file intact" if now == before else "previous file CHANGED") + (
        f", leftovers {leftovers}" if leftovers else ", no temporary file left")


def _leftovers(path: Path) -> list[str]:
    """Temporary files of any writer (live or dead) beside ``path`` and its family
    (:func:`restorelab.safety.stale_temps`), and any other hidden file (a lock left behind)."""
    from restorelab.safety import stale_temps

    temps = {t.name for t in stale_temps(path, family=True, include_live=True)}
    hidden = {x.name for x in path.parent.iterdir() if x.name.startswith(".")}
    return sorted(temps | hidden)


def _session_reader(p: Path) -> str:
    from restorelab.session import load_session

    s = load_session(p)
    return _digest(s.image) + str(s.extra)


def _image_reader(p: Path) -> str:
    from restorelab.io import load_image

    return _digest(load_image(p))


def scenario_enospc_session() -> FaultResult:
    from restorelab.session import save_session

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "work.rlsession"
        save_session(p, _session(1))
        before = _session_reader(p)
        err = ""
        with _enospc_on_fsync():
            try:
                save_session(p, _session(2))
            except OSError as e:
                err = f"OSError({errno.errorcode.get(e.errno or 0, e.errno)})"
        ok, what = _check_previous_intact("session", p, before, _session_reader)
        extra = [x.name for x in _visible_files(Path(d))]
    return FaultResult("disk full (ENOSPC, simulated) saving a session", "error, previous session intact",
                       f"{err or 'no error'}; {what}; files {extra}", ok and bool(err) and len(extra) == 2)


def scenario_fsize_session() -> FaultResult:
    """A real kernel write failure (EFBIG) in a child process with a 64 kB file-size limit."""
    from restorelab.session import save_session

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "work.rlsession"
        save_session(p, _session(1), compress=False)
        before = _session_reader(p)
        child = _py("""
            import resource, signal, sys
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
            from restorelab.bench.faults import _session
            from restorelab.session import save_session
            try:
                save_session(sys.argv[1], _session(2, big=True), compress=False)
            except OSError as e:
                print("OSError", e.errno)
                sys.exit(3)
            print("saved")
        """, str(p))
        out, errtxt = child.communicate(timeout=120)
        ok, what = _check_previous_intact("session", p, before, _session_reader)
    return FaultResult("disk full (real EFBIG, file-size limit) saving a session", "error, previous intact",
                       f"child: {out.strip() or errtxt.strip()[-120:]}; {what}", ok and child.returncode == 3)


def scenario_enospc_image() -> FaultResult:
    try:
        from restorelab.io import ImageError, save_image
    except ImportError as e:
        return FaultResult("disk full saving an image", "error, previous intact", f"skipped ({e})", True)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "out.png"
        save_image(p, np.random.default_rng(0).random((40, 40, 3), dtype=np.float32))
        before = _image_reader(p)
        err = ""
        with _enospc_on_fsync():
            try:
                save_image(p, np.zeros((40, 40, 3), np.float32), overwrite=True)
            except (ImageError, OSError) as e:
                err = f"{type(e).__name__}: {str(e)[:60]}"
        ok, what = _check_previous_intact("image", p, before, _image_reader)
    return FaultResult("disk full (ENOSPC, simulated) saving an image", "error, previous image intact",
                       f"{err or 'no error'}; {what}", ok and bool(err))


@contextlib.contextmanager
def _read_only(d: Path) -> Iterator[str]:
    if os.geteuid() != 0:
        os.chmod(d, 0o555)
        try:
            yield "chmod 555"
        finally:
            os.chmod(d, 0o755)
        return

    real = os.open
    inside = str(d.resolve())

    def deny(path: Any, flags: int, *a: Any, **k: Any) -> Any:
        creating = flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR)
        if creating and os.path.dirname(os.path.abspath(os.fspath(path))) == inside:
            raise PermissionError(errno.EACCES, "Permission denied (simulated read-only folder)")
        return real(path, flags, *a, **k)

    with mock.patch("os.open", deny):
        yield "simulated EACCES on os.open (running as root)"


def scenario_readonly() -> FaultResult:
    from restorelab.session import save_session

    with tempfile.TemporaryDirectory() as d:
        dd = Path(d)
        p = dd / "work.rlsession"
        save_session(p, _session(1))
        before = _session_reader(p)
        img_before = None
        try:
            from restorelab.io import ImageError, save_image

            save_image(dd / "out.png", np.full((8, 8), 0.5, np.float32))
            img_before = _image_reader(dd / "out.png")
        except ImportError:
            ImageError = OSError  # type: ignore[misc,assignment]  # noqa: N806
        errs = []
        with _read_only(dd) as how:
            for label, fn in (("session", lambda: save_session(p, _session(2))),
                              ("image", lambda: save_image(dd / "out.png", np.zeros((8, 8), np.float32),
                                                           overwrite=True))):
                if label == "image" and img_before is None:
                    continue
                try:
                    fn()
                    errs.append(f"{label}: no error")
                except (OSError, ImageError) as e:
                    errs.append(f"{label}: {type(e).__name__}")
        ok, what = _check_previous_intact("session", p, before, _session_reader)
        if img_before is not None:
            ok = ok and _image_reader(dd / "out.png") == img_before
    return FaultResult("read-only folder", "PermissionError/ImageError, previous files intact",
                       f"{how}: {', '.join(errs)}; {what}", ok and all("no error" not in e for e in errs))


# ----------------------------------------------------------------------------- kill mid-save / mid-job
_SAVER = """
    import sys, numpy as np
    from restorelab.bench.faults import _session
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "session":
        from restorelab.session import save_session
        s = [_session(1, big=True), _session(2, big=True)]
        s[1].image = s[1].image[:256]; s[1].masks[0].mask = s[1].masks[0].mask[:256]
        save_session(path, s[0], compress=False)
        print("ready", flush=True)
        i = 0
        while True:
            save_session(path, s[i % 2], compress=bool(i % 3 == 0)); i += 1
    else:
        from restorelab.io import save_image
        a = [np.random.default_rng(k).random((300, 300, 3), dtype=np.float32) for k in (1, 2)]
        save_image(path, a[0], overwrite=True, bit_depth=16)
        print("ready", flush=True)
        i = 0
        while True:
            save_image(path, a[i % 2], overwrite=True, bit_depth=16); i += 1
"""


def scenario_kill_mid_save(kind: str = "session", trials: int = 12, seed: int = 0) -> FaultResult:
    """SIGKILL a process that saves in a loop, at random moments; the file must stay complete."""
    if kind == "image":
        try:
            import restorelab.io  # noqa: F401
        except ImportError as e:
            return FaultResult("killed mid-save (image)", "no half-written file", f"skipped ({e})", True)
    from restorelab.session import load_session

    r = np.random.default_rng(seed)
    bad: list[str] = []
    kills = 0
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("work.rlsession" if kind == "session" else "out.png")
        expect: set[str] = set()
        for _ in range(trials):
            child = _py(_SAVER, kind, str(p))
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                child.kill()
                _, e = child.communicate()
                return FaultResult(f"killed mid-save ({kind})", "no half-written file",
                                   f"child failed: {e.strip()[-200:]}", False)
            time.sleep(float(r.uniform(0.02, 0.5)))
            child.send_signal(signal.SIGKILL)
            child.communicate()
            kills += 1
            try:
                if kind == "session":
                    s = load_session(p, check_image=False)
                    tag = str(s.extra.get("i"))
                    if s.image.shape[0] != (512 if tag == "1" else 256):
                        bad.append("image and document from different saves")
                else:
                    from restorelab.io import load_image

                    tag = _digest(load_image(p))[:8]
                expect.add(tag)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{type(e).__name__}: {str(e)[:80]}")
            if kind == "session":  # every visible sidecar must be complete (its name is its hash)
                for side in Path(d).glob("*.npz"):
                    h = hashlib.sha256(side.read_bytes()).hexdigest()[:16]
                    if side.name.split(".")[-2] != h:
                        bad.append(f"half-written sidecar {side.name}")
        # the next ordinary save removes what the killed writers left: nothing may remain
        if kind == "session":
            from restorelab.session import save_session

            save_session(p, _session(3))
        else:
            from restorelab.io import save_image

            save_image(p, np.zeros((8, 8), np.float32), overwrite=True)
        left = _leftovers(p)
    ok = not bad and not left
    return FaultResult(f"killed (SIGKILL) mid-save, {kind}", "previous or new file complete",
                       f"{kills} kills: {len(bad)} damaged ({'; '.join(bad[:2])}), versions seen "
                       f"{sorted(expect)}, hidden temporary files left {len(left)}", ok)


_CONCURRENT = """
    import sys, numpy as np
    from restorelab.bench.faults import _session
    from restorelab.session import save_session
    s = _session(int(sys.argv[2]))
    for i in range(int(sys.argv[3])):
        save_session(sys.argv[1], s, compress=bool(i % 2))
    print("done", flush=True)
"""


def scenario_concurrent_saves(saves: int = 40) -> FaultResult:
    """Two processes save the same session in a loop while this one reads it: saves are
    serialised (lock), no reader sees a missing array file, nothing is left over."""
    from restorelab.session import SessionError, load_session, save_session

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "shared [1].rlsession"
        save_session(p, _session(0))
        kids = [_py(_CONCURRENT, str(p), str(k), str(saves)) for k in (1, 2)]
        errors, reads, tags = [], 0, set()
        while any(k.poll() is None for k in kids):
            try:
                s = load_session(p, check_image=False)
                tags.add(s.extra.get("i"))
                reads += 1
            except SessionError as e:
                errors.append(str(e)[:100])
        outs = [k.communicate(timeout=120) for k in kids]
        crashed = [o[1].strip().splitlines()[-1][:100] for k, o in zip(kids, outs, strict=True)
                   if k.returncode != 0]
        left = _leftovers(p)
        sides = [x.name for x in Path(d).iterdir() if x.name.endswith(".npz")]
    ok = not errors and not crashed and not left and len(sides) == 1
    return FaultResult("two processes saving one session, a third reading", "no error, one complete session",
                       f"{2 * saves} saves, {reads} reads: {len(errors)} read errors {errors[:1]}, "
                       f"{len(crashed)} crashed {crashed[:1]}, leftovers {left}, {len(sides)} sidecar(s)", ok)


_MODEL_SAVER = """
    import sys
    from restorelab.models import build_model
    from restorelab.models.weights import save_model
    nets = [build_model("bfcnn", 1, 12, 64), build_model("bfcnn", 1, 12, 64)]
    save_model(sys.argv[1], nets[0])
    print("ready", flush=True)
    i = 0
    while True:
        save_model(sys.argv[1], nets[i % 2]); i += 1
"""


def scenario_kill_model_save(trials: int = 4, seed: int = 1) -> FaultResult:
    """SIGKILL a process saving a model in a loop: the file always loads; the next save leaves
    no temporary file."""
    from restorelab.models import build_model
    from restorelab.models.weights import load_model, save_model

    r = np.random.default_rng(seed)
    bad: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.safetensors"
        for _ in range(trials):
            child = _py(_MODEL_SAVER, str(p))
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                child.kill()
                _, e = child.communicate()
                return FaultResult("killed mid-save, model", "model complete", f"child failed: {e[-200:]}",
                                   False)
            time.sleep(float(r.uniform(0.02, 0.4)))
            child.send_signal(signal.SIGKILL)
            child.communicate()
            try:
                load_model(p)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{type(e).__name__}: {str(e)[:80]}")
        save_model(p, build_model("bfcnn", 1, 3, 4))
        left = _leftovers(p)
    return FaultResult("killed (SIGKILL) mid-save, model",
                       "previous or new model complete, no temporary left",
                       f"{trials} kills: {len(bad)} unreadable {bad[:1]}, leftovers after the next save "
                       f"{left}",
                       not bad and not left)


def scenario_kill_pattern_name_save(trials: int = 6, seed: int = 2) -> FaultResult:
    """Kill a process saving ``shot [1].rlsession`` beside ``shot 1.rlsession`` (a glob of the
    first name matches the second's files): the sibling keeps its pixels."""
    from restorelab.session import load_session, save_session

    r = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        sib = Path(d) / "shot 1.rlsession"
        save_session(sib, _session(7))
        want = _session_reader(sib)
        target = Path(d) / "shot [1].rlsession"
        bad = []
        for _ in range(trials):
            child = _py(_SAVER, "session", str(target))
            assert child.stdout is not None
            child.stdout.readline()
            time.sleep(float(r.uniform(0.02, 0.3)))
            child.send_signal(signal.SIGKILL)
            child.communicate()
            try:
                load_session(target, check_image=False)
                if _session_reader(sib) != want:
                    bad.append("the sibling's pixels changed")
            except Exception as e:  # noqa: BLE001
                bad.append(f"{type(e).__name__}: {str(e)[:80]}")
        save_session(target, _session(3))
        left = _leftovers(target) + _leftovers(sib)
    return FaultResult("killed mid-save of 'shot [1]' beside 'shot 1'",
                       "both sessions complete, sibling intact",
                       f"{trials} kills: {len(bad)} problems {bad[:1]}, leftovers {sorted(set(left))}",
                       not bad and not left)


_CRASHER = """
    import hashlib, os, sys, numpy as np
    from restorelab import denoise
    from restorelab.bench.soak import pick_denoiser
    from restorelab.session import Autosaver, MethodChoice, Session
    name = pick_denoiser()
    den = denoise.get(name, device="cpu")
    y = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    auto = Autosaver(sys.argv[1], interval_s=0.0)
    s = Session(image=y, methods=[MethodChoice("denoise", name, {}, 0.1, 0)])
    auto.maybe_save(s, force=True)
    x = den(y, 0.1)                     # a completed job ...
    s.image = x
    s.history.append(MethodChoice("denoise", name, {}, 0.1, 0))
    assert auto.maybe_save(s, force=True) is not None   # ... autosaved after completion
    print(hashlib.sha256(x.tobytes()).hexdigest(), os.getpid(), flush=True)
    while True:                         # the next job, killed in the middle
        den(np.random.default_rng(1).random((256, 256), dtype=np.float32), 0.1)
"""


def scenario_crash_mid_job() -> FaultResult:
    from restorelab.session import Autosaver

    with tempfile.TemporaryDirectory() as d:
        env = {"RESTORELAB_NO_AUTOSAVE": "0"}
        child = _py(_CRASHER, d, env=env)
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2:
            child.kill()
            _, e = child.communicate()
            return FaultResult("crash mid-job → autosave recovery", "recoverable",
                               f"child failed: {e[-200:]}", False)
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.communicate()
        digest, pid = line[0], int(line[1])
        with mock.patch.dict(os.environ, {"RESTORELAB_NO_AUTOSAVE": "0"}):
            recs = Autosaver(d).recover()
            ok = len(recs) == 1 and recs[0].pid == pid
            what = f"{len(recs)} recoverable session(s)"
            if ok:
                s = recs[0].load()
                ok = _digest(s.image) == digest and len(s.history) == 1
                what += ", last completed result restored" if ok else ", WRONG content"
    return FaultResult("crash (SIGKILL) mid-job → autosave recovery", "the last completed result is offered",
                       what, ok)


SCENARIOS: tuple[Callable[[], FaultResult], ...] = (
    scenario_oom_tiles,
    scenario_oom_cpu,
    scenario_oom_everywhere,
    scenario_enospc_session,
    scenario_fsize_session,
    scenario_enospc_image,
    scenario_readonly,
    lambda: scenario_kill_mid_save("session"),
    lambda: scenario_kill_mid_save("image"),
    scenario_kill_model_save,
    scenario_kill_pattern_name_save,
    scenario_concurrent_saves,
    scenario_crash_mid_job,
)


def run_faults(on_result: Callable[[FaultResult], Any] | None = None) -> list[FaultResult]:
    """Run every scenario; an unexpected exception counts as a failed scenario."""
    out = []
    for sc in SCENARIOS:
        try:
            res = sc()
        except Exception as e:  # noqa: BLE001
            res = FaultResult(getattr(sc, "__name__", "scenario"), "no crash",
                              f"{type(e).__name__}: {e}", False)
        out.append(res)
        if on_result is not None:
            on_result(res)
    return out

"""Document files for the window: decoding and session loading as worker jobs, and
autosave on a background thread. Each prepares the display conversion where the pixels
are, so the GUI thread only swaps arrays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu, QWidget

from restorelab.gui import dialogs
from restorelab.gui.display import to_display
from restorelab.gui.document import Document
from restorelab.session import Autosaver, Session, load_session
from restorelab.workspace import Workspace


def open_job(path: Path) -> Any:
    """Decode ``path`` and prepare the workspace and its display on the worker."""
    from restorelab.io import image_info, load_image

    img = load_image(path)
    try:
        bits = image_info(path).bit_depth
    except Exception:  # noqa: BLE001 - the bit depth only picks the default save depth
        bits = None
    ws = Workspace.from_image(img, path, bit_depth=bits)
    disp = to_display(ws.image)
    return ws, (disp, disp)
    yield


def session_job(path: Path) -> Any:
    """Load, validate and rebuild a session on the worker (the window is untouched)."""
    from restorelab.io import load_image

    s = load_session(path)
    original = None
    if s.image_file is not None and not s.image_missing:
        try:
            original = load_image(s.image_file)
        except Exception:  # noqa: BLE001 - the session's own pixels are enough
            original = None
    ws = Workspace.from_session(s, original)
    return ws, s.warnings, (to_display(ws.image), to_display(ws.original))
    yield


class Autosaves:
    """Autosave on a background thread, one at a time; the session holds a snapshot of the
    image (the document copies on its next write), so the GUI thread copies nothing."""

    def __init__(self, autosaver: Autosaver, report: Callable[[str], None]) -> None:
        self.autosaver, self.report = autosaver, report
        self.thread: threading.Thread | None = None

    def save(self, doc: Document, collect: Callable[[], Workspace], *, force: bool = False) -> bool:
        if self.thread is not None and self.thread.is_alive():
            return False
        try:
            ws = collect()
            snap = Workspace(**{**ws.__dict__, "image": doc.snapshot(), "mask": ws.mask.copy()})
            session: Session = snap.to_session(copy=False)
        except Exception as e:  # noqa: BLE001 - autosave must never disturb the user
            self.report(f"autosave failed: {e}")
            return False
        self.thread = threading.Thread(
            target=self.autosaver.maybe_save,
            args=(session,),
            kwargs={"force": force},
            name="restorelab-autosave",
            daemon=True,
        )
        self.thread.start()
        return True

    def wait(self, timeout: float = 60.0) -> None:
        t, self.thread = self.thread, None
        if t is not None:
            t.join(timeout)

    def ask_recovery(self, parent: QWidget) -> Any:
        """Offer the newest autosave of a crashed run; returns it (a ``RecoverableSession``)
        when the user wants it restored. Every other autosave found is discarded."""
        found = self.autosaver.recover()
        if not found:
            return None
        newest = found[0]
        what = Path(newest.image_path).name if newest.image_path else "an untitled image"
        more = f"\n{len(found) - 1} older autosave(s) will be discarded." if len(found) > 1 else ""
        restore = dialogs.restore_or_discard(
            parent,
            "Recover unsaved work?",
            f"restorelab did not close cleanly last time. Restore the autosaved work on {what}?{more}",
        )
        for rec in found[1:] if restore else found:
            self.autosaver.discard(rec)
        return newest if restore else None


class RecentFiles:
    """The "Open recent" menu, kept in the settings."""

    def __init__(
        self, settings: QSettings, menu: QMenu, open_path: Callable[[str], Any], limit: int = 8
    ) -> None:
        self.settings, self.menu, self.open_path, self.limit = settings, menu, open_path, limit
        self.fill()

    def paths(self) -> list[str]:
        v = self.settings.value("recent", [])
        return [str(x) for x in ([v] if isinstance(v, str) else (v or []))]

    def add(self, path: Path) -> None:
        self.settings.setValue(
            "recent", ([str(path)] + [p for p in self.paths() if p != str(path)])[: self.limit]
        )
        self.fill()

    def fill(self) -> None:
        self.menu.clear()
        for p in self.paths():
            self.menu.addAction(p).triggered.connect(lambda _=False, path=p: self.open_path(path))
        self.menu.setEnabled(bool(self.paths()))


def is_original(doc: Document, path: Path) -> bool:
    """Whether ``path`` is the file the document was opened from."""
    try:
        return doc.path is not None and path.resolve() == doc.path.resolve()
    except OSError:
        return False


def write_image(parent: QWidget, doc: Document, path: Path, *, confirmed: bool = False) -> bool:
    """Save the document's image to ``path`` through the atomic writer; replacing the opened
    original asks first; an error is a dialog, never a crash."""
    if (
        is_original(doc, path)
        and not confirmed
        and not dialogs.confirm(
            parent,
            "Replace the original?",
            f"{path.name} is the image you opened. Replace it with the edited version?",
        )
    ):
        return False
    try:
        from restorelab.io import save_image

        bits = 16 if doc.bit_depth == 16 and path.suffix.lower() in (".png", ".tif", ".tiff") else None
        save_image(path, doc.image, overwrite=path.exists(), bit_depth=bits)
    except Exception as e:  # noqa: BLE001 - shown, never a crash
        import traceback

        dialogs.error(parent, "Cannot save", f"Could not save {path.name}:\n{e}", traceback.format_exc())
        return False
    return True


def suggest(doc: Document | None, last_dir: str, suffix: str, ext: str | None = None) -> str:
    """A file name for a save dialog, in the user's last folder (never in the package)."""
    base = (doc.saved_path or doc.path) if doc is not None else None
    name = (base.stem + suffix + (ext or base.suffix or ".png")) if base else "untitled" + (ext or ".png")
    return str(Path(last_dir) / name)

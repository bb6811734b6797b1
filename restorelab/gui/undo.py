"""Undo/redo with bounded memory.

Every edit is a :class:`DeltaCommand` holding *deltas*, never full copies per stroke: a paint
stroke keeps the before/after of the 256×256 tiles it touched, a filter or clone result
keeps the before/after of the bounding box of the pixels that changed. The arrays live
in a :class:`DeltaStore` with a RAM budget; beyond it the oldest deltas are spilled to
``.npy`` files in a private temporary folder (deleted with the store) by the store's own
writer thread, so that a spill never stalls the GUI thread, and a long session
never grows without bound in memory. Reading a spilled delta back is done ahead of time on
the same thread: the document asks the store to :meth:`~DeltaStore.prefetch` the deltas of
the next undo and redo, so an undo reads memory, not a file (a 12 MP delta is ~150 MB).
Commands change the document only through its methods (``write_patch``, ``swap``); the
document drops every delta that no command left on its undo stack refers to
(:meth:`DeltaStore.retain`), so the store is bounded by the undo limit, not by the number of
edits ever made.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
from PySide6.QtGui import QUndoCommand

from restorelab.gui.display import to_display


class Document(Protocol):
    """What a command needs of the document it edits (the GUI's Document provides it)."""

    store: DeltaStore
    image: np.ndarray
    mask: np.ndarray

    def write_patch(self, layer: str, rect: tuple[int, int, int, int], values: np.ndarray) -> None: ...

    def swap(self, image: np.ndarray, *, mask: np.ndarray | None = None,
             rect: tuple[int, int, int, int] | None = None, display: np.ndarray | None = None) -> None: ...

TILE = 256


class DeltaStore:
    """Arrays kept in RAM up to ``budget`` bytes, then spilled (oldest first) to disk.

    A spill is written by the store's writer thread (a 24 MP result is a few hundred MB,
    a tenth of a second or more to write); until its file is complete the array stays
    readable from memory. :meth:`flush` waits for the pending writes."""

    def __init__(self, budget: int = 768 * 2**20) -> None:
        self.budget = int(budget)
        self._mem: OrderedDict[int, np.ndarray] = OrderedDict()
        self._writing: dict[int, tuple[np.ndarray, Future[None]]] = {}
        self._disk: dict[int, str] = {}
        self._reading: dict[int, Future[np.ndarray]] = {}
        self._ids = itertools.count()
        self._dir: str | None = None
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self.bytes_in_memory = 0
        weakref.finalize(self, DeltaStore._cleanup, self.__dict__)

    @staticmethod
    def _cleanup(state: dict) -> None:
        w = state.get("_writer")
        if w is not None:  # a write still running fails once its folder is gone: nothing is left
            w.shutdown(wait=False, cancel_futures=True)
        d = state.get("_dir")
        if d:
            shutil.rmtree(d, ignore_errors=True)

    def put(self, arr: np.ndarray, *, copy: bool = True) -> int:
        """Keep ``arr`` (a copy unless ``copy=False``: the caller hands over an array no one
        else writes to); returns its key."""
        key = next(self._ids)
        a = np.array(arr, copy=True) if copy else np.asarray(arr)
        self._mem[key] = a
        self.bytes_in_memory += a.nbytes
        self._spill()
        return key

    def get(self, key: int) -> np.ndarray:
        if key in self._mem:
            self._mem.move_to_end(key)
            return self._mem[key]
        with self._lock:
            pending = self._writing.get(key)
            if pending is not None:
                return pending[0]
            loading = self._reading.get(key)
            path = self._disk[key]
        if loading is not None:  # prefetched (waits only if it is still being read)
            return loading.result()
        return np.load(path)

    def prefetch(self, keys: set[int] | Sequence[int]) -> None:
        """Read the spilled arrays among ``keys`` back into memory on the store's thread,
        and forget earlier prefetches not among them (at most what the next undo and redo
        need is held twice: on disk and in memory)."""
        want = set(keys)
        with self._lock:
            for key in [k for k in self._reading if k not in want]:
                del self._reading[key]
            todo = [(k, self._disk[k]) for k in want if k in self._disk and k not in self._reading]
            if todo and self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="restorelab-undo-spill")
            for k, path in todo:
                assert self._writer is not None
                self._reading[k] = self._writer.submit(np.load, path)

    def keys(self) -> set[int]:
        with self._lock:
            return set(self._mem) | set(self._writing) | set(self._disk)

    def retain(self, keep: set[int]) -> None:
        """Drop every array whose key is not in ``keep``."""
        for key in self.keys() - keep:
            self.drop(key)

    def drop(self, key: int) -> None:
        a = self._mem.pop(key, None)
        if a is not None:
            self.bytes_in_memory -= a.nbytes
        with self._lock:
            pending = self._writing.pop(key, None)
            p = self._disk.pop(key, None)
            self._reading.pop(key, None)
        if pending is not None:  # its file is removed once written (see _write)
            return
        if p:
            try:
                os.remove(p)
            except OSError:
                pass

    def flush(self) -> None:
        """Wait until every spill has been written and every prefetch read."""
        with self._lock:
            futures: list[Future[Any]] = [f for _, f in self._writing.values()]
            futures += list(self._reading.values())
        for f in futures:
            f.result()

    @property
    def spilled(self) -> int:
        with self._lock:
            return len(self._disk) + len(self._writing)

    def _spill(self) -> None:
        while self.bytes_in_memory > self.budget and len(self._mem) > 1:
            key, a = self._mem.popitem(last=False)
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="restorelab-undo-")
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="restorelab-undo-spill")
            path = os.path.join(self._dir, f"{key}.npy")
            with self._lock:
                self._writing[key] = (a, self._writer.submit(self._write, key, a, path))
            self.bytes_in_memory -= a.nbytes

    def _write(self, key: int, a: np.ndarray, path: str) -> None:
        np.save(path, a)
        with self._lock:
            if self._writing.pop(key, None) is not None:
                self._disk[key] = path
                return
        try:  # dropped while it was being written
            os.remove(path)
        except OSError:
            pass


class DeltaCommand(QUndoCommand):
    """An undoable edit whose arrays live in the document's :class:`DeltaStore`.

    Subclasses keep arrays with :meth:`keep` and read them with :meth:`get`; the document
    frees the arrays of commands that left the undo stack.
    """

    def __init__(self, doc: Document, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.store_keys: list[int] = []
        self.nbytes = 0
        self.empty = False

    def keep(self, arr: np.ndarray, *, copy: bool = True) -> int:
        key = self.doc.store.put(arr, copy=copy)
        self.store_keys.append(key)
        self.nbytes += int(np.asarray(arr).nbytes)
        return key

    def get(self, key: int) -> np.ndarray:
        return self.doc.store.get(key)


class PatchCommand(DeltaCommand):
    """Before/after of rectangular patches of one layer (``image`` or ``mask``).

    ``patches`` is a list of ``(y0, x0, before, after)``. With ``applied=True`` (a paint
    stroke already drawn) the first ``redo`` (called by ``QUndoStack.push``) does nothing.
    """

    def __init__(
        self,
        doc: Document,
        layer: str,
        patches: Sequence[tuple[int, int, np.ndarray, np.ndarray]],
        text: str,
        *,
        applied: bool = False,
    ) -> None:
        super().__init__(doc, text)
        self.layer = layer
        self._patches = [(y0, x0, self.keep(b), self.keep(a), b.shape[:2]) for y0, x0, b, a in patches]
        self._skip = applied

    def _write(self, which: int) -> None:
        for y0, x0, kb, ka, (h, w) in self._patches:
            self.doc.write_patch(self.layer, (y0, x0, y0 + h, x0 + w), self.get(kb if which == 0 else ka))

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self._write(1)

    def undo(self) -> None:
        self._write(0)


def changed_bbox(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (y0, x0, y1, x1) of the pixels where ``a`` and ``b`` differ."""
    d = a != b
    if d.ndim == 3:
        d = d.any(axis=2)
    rows = np.flatnonzero(d.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(d[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


class ImageEdit:
    """A new image and what changed, computed where the new image was made (a worker
    thread), so that applying it on the GUI thread copies nothing.

    ``bbox`` is the changed box (None: nothing changed); ``before``/``after`` its pixels;
    with a shape change, ``full`` is True and the whole images are kept.
    """

    __slots__ = ("image", "bbox", "before", "after", "full", "old_mask", "display")

    def __init__(self, old: np.ndarray, new: np.ndarray, old_mask: np.ndarray | None = None) -> None:
        new = np.ascontiguousarray(new, dtype=np.float32)
        self.image = new
        self.full = new.shape != old.shape
        self.old_mask = old_mask
        self.display: np.ndarray | None = None
        if self.full:
            self.bbox: tuple[int, int, int, int] | None = (0, 0, new.shape[0], new.shape[1])
            self.before, self.after = old, new
            self.display = to_display(new)
            return
        self.bbox = changed_bbox(old, new)
        if self.bbox is None:
            self.before = self.after = None
        else:
            y0, x0, y1, x1 = self.bbox
            self.before = old[y0:y1, x0:x1].copy()
            self.after = new[y0:y1, x0:x1].copy()
            self.display = to_display(self.after)

    @classmethod
    def patch(cls, old: np.ndarray, rect: tuple[int, int, int, int], values: np.ndarray) -> ImageEdit:
        """An edit that writes ``values`` into ``rect`` of ``old`` (no whole-image copy)."""
        e = cls.__new__(cls)
        y0, x0, y1, x1 = rect
        e.image, e.full, e.old_mask = None, False, None
        e.bbox = rect
        e.before = old[y0:y1, x0:x1].copy()
        e.after = np.array(values, dtype=np.float32, copy=True)
        e.display = to_display(e.after)
        return e


class ReplaceImageCommand(DeltaCommand):
    """A new image (filter, clone, sampler result) from an :class:`ImageEdit`: the same
    shape keeps only the changed box; a new shape keeps both images and the old mask."""

    def __init__(self, doc: Document, edit: ImageEdit, text: str) -> None:
        super().__init__(doc, text)
        self.edit_full = edit.full
        self.empty = edit.bbox is None
        self._new = edit.image  # the first redo swaps this array in, no copy
        self._display = edit.display
        if edit.full:
            old_mask = edit.old_mask if edit.old_mask is not None else doc.mask
            self._keys = (
                self.keep(edit.before, copy=False),
                self.keep(edit.after, copy=False),
                self.keep(old_mask),
            )
        elif edit.bbox is not None:
            self.bbox = edit.bbox
            self._keys = (self.keep(edit.before, copy=False), self.keep(edit.after, copy=False), -1)

    def redo(self) -> None:
        if self._new is not None:
            new, self._new = self._new, None
            display, self._display = self._display, None
            if self.edit_full:
                self.doc.swap(new, mask=np.zeros(new.shape[:2], np.uint8), display=display)
            else:
                self.doc.swap(new, rect=self.bbox, display=display)
            return
        if self.edit_full:
            self.doc.swap(self.get(self._keys[1]).copy(), mask=np.zeros(self.doc.mask.shape, np.uint8))
        else:
            self.doc.write_patch("image", self.bbox, self.get(self._keys[1]))

    def undo(self) -> None:
        if self.edit_full:
            self.doc.swap(self.get(self._keys[0]).copy(), mask=self.get(self._keys[2]).copy())
        else:
            self.doc.write_patch("image", self.bbox, self.get(self._keys[0]))


class MaskCommand(DeltaCommand):
    """A whole-mask edit (clear, invert, fill, load): stored as the changed bounding box."""

    def __init__(self, doc: Document, new: np.ndarray, text: str) -> None:
        super().__init__(doc, text)
        new = np.asarray(new, dtype=np.uint8)
        if new.shape != doc.mask.shape:
            raise ValueError(f"mask shape {new.shape} does not match the image {doc.mask.shape}")
        bb = changed_bbox(doc.mask, new)
        self.empty = bb is None
        self.bbox = bb or (0, 0, 0, 0)
        y0, x0, y1, x1 = self.bbox
        self._keys = (self.keep(doc.mask[y0:y1, x0:x1]), self.keep(new[y0:y1, x0:x1]))

    def redo(self) -> None:
        if not self.empty:
            self.doc.write_patch("mask", self.bbox, self.get(self._keys[1]))

    def undo(self) -> None:
        if not self.empty:
            self.doc.write_patch("mask", self.bbox, self.get(self._keys[0]))


def edit_job(job: Any, old: np.ndarray, mask: np.ndarray | None = None) -> Generator[Any, None, ImageEdit]:
    """Drive ``job`` (a core job returning an image) and return the :class:`ImageEdit` from
    ``old`` to its result — blended inside ``mask`` when given — all on the worker thread."""
    out = yield from job
    out = np.asarray(out, np.float32)
    if out.shape != old.shape and out.ndim == 2 and old.ndim == 3:
        out = np.repeat(out[..., None], old.shape[2], axis=2)
    if mask is not None and out.shape == old.shape:
        out = np.where(mask[..., None] if out.ndim == 3 else mask, out, old)
    return ImageEdit(old, out)

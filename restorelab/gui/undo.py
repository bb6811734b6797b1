"""Undo/redo with bounded memory.

Every edit is a ``QUndoCommand`` holding *deltas*, never full copies per stroke: a paint
stroke keeps the before/after of the 256×256 tiles it touched, a filter or clone result
keeps the before/after of the bounding box of the pixels that changed. The arrays live
in a :class:`DeltaStore` with a RAM budget; beyond it the oldest deltas are spilled to
``.npy`` files in a private temporary folder (deleted with the store), so a long session
never grows without bound in memory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QUndoCommand

if TYPE_CHECKING:
    from restorelab.gui.document import Document

TILE = 256


class DeltaStore:
    """Arrays kept in RAM up to ``budget`` bytes, then spilled (oldest first) to disk."""

    def __init__(self, budget: int = 768 * 2**20) -> None:
        self.budget = int(budget)
        self._mem: OrderedDict[int, np.ndarray] = OrderedDict()
        self._disk: dict[int, str] = {}
        self._ids = itertools.count()
        self._dir: str | None = None
        self.bytes_in_memory = 0
        weakref.finalize(self, DeltaStore._cleanup, self.__dict__)

    @staticmethod
    def _cleanup(state: dict) -> None:
        d = state.get("_dir")
        if d:
            shutil.rmtree(d, ignore_errors=True)

    def put(self, arr: np.ndarray) -> int:
        """Keep a copy of ``arr``; returns its key."""
        key = next(self._ids)
        a = np.array(arr, copy=True)
        self._mem[key] = a
        self.bytes_in_memory += a.nbytes
        self._spill()
        return key

    def get(self, key: int) -> np.ndarray:
        if key in self._mem:
            self._mem.move_to_end(key)
            return self._mem[key]
        return np.load(self._disk[key])

    def drop(self, key: int) -> None:
        a = self._mem.pop(key, None)
        if a is not None:
            self.bytes_in_memory -= a.nbytes
        p = self._disk.pop(key, None)
        if p:
            try:
                os.remove(p)
            except OSError:
                pass

    @property
    def spilled(self) -> int:
        return len(self._disk)

    def _spill(self) -> None:
        while self.bytes_in_memory > self.budget and len(self._mem) > 1:
            key, a = self._mem.popitem(last=False)
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="restorelab-undo-")
            path = os.path.join(self._dir, f"{key}.npy")
            np.save(path, a)
            self._disk[key] = path
            self.bytes_in_memory -= a.nbytes


class PatchCommand(QUndoCommand):
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
        super().__init__(text)
        self.doc, self.layer = doc, layer
        st = doc.store
        self._patches = [(y0, x0, st.put(b), st.put(a), b.shape[:2]) for y0, x0, b, a in patches]
        self._skip = applied
        self.nbytes = sum(b.nbytes + a.nbytes for _, _, b, a in patches)

    def _write(self, which: int) -> None:
        arr = self.doc.image if self.layer == "image" else self.doc.mask
        ys, xs, ye, xe = arr.shape[0], arr.shape[1], 0, 0
        for y0, x0, kb, ka, (h, w) in self._patches:
            arr[y0 : y0 + h, x0 : x0 + w] = self.doc.store.get(kb if which == 0 else ka)
            ys, xs, ye, xe = min(ys, y0), min(xs, x0), max(ye, y0 + h), max(xe, x0 + w)
        rect = (ys, xs, ye, xe)
        if self.layer == "image":
            self.doc.image_changed.emit(rect)
        else:
            self.doc.mask_changed.emit(rect)

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self._write(1)

    def undo(self) -> None:
        self._write(0)

    def __del__(self) -> None:  # pragma: no cover - timing depends on the GC
        try:
            for _, _, kb, ka, _ in self._patches:
                self.doc.store.drop(kb)
                self.doc.store.drop(ka)
        except Exception:  # noqa: BLE001
            pass


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


class ReplaceImageCommand(QUndoCommand):
    """A new image (filter, clone, sampler result). Same shape: only the changed bounding
    box is stored; a new shape stores both images (and resets the mask)."""

    def __init__(self, doc: Document, new: np.ndarray, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        new = np.asarray(new, dtype=np.float32)
        old = doc.image
        st = doc.store
        self.full = new.shape != old.shape
        if self.full:
            self._keys = (st.put(old), st.put(new), st.put(doc.mask))
            self.nbytes = old.nbytes + new.nbytes
            self.empty = False
        else:
            bb = changed_bbox(old, new)
            self.empty = bb is None
            if bb is None:
                bb = (0, 0, 0, 0)
            y0, x0, y1, x1 = bb
            self.bbox = bb
            self._keys = (st.put(old[y0:y1, x0:x1]), st.put(new[y0:y1, x0:x1]), -1)
            self.nbytes = 2 * old[y0:y1, x0:x1].nbytes

    def _apply(self, which: int) -> None:
        st = self.doc.store
        if self.full:
            img = st.get(self._keys[which]).copy()
            mask = st.get(self._keys[2]).copy() if which == 0 else None
            self.doc.set_image(img, mask=mask)
            return
        y0, x0, y1, x1 = self.bbox
        if y1 > y0 and x1 > x0:
            self.doc.image[y0:y1, x0:x1] = st.get(self._keys[which])
            self.doc.image_changed.emit(self.bbox)

    def redo(self) -> None:
        self._apply(1)

    def undo(self) -> None:
        self._apply(0)


class MaskCommand(QUndoCommand):
    """A whole-mask edit (clear, invert, fill, load): stored as the changed bounding box."""

    def __init__(self, doc: Document, new: np.ndarray, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        new = np.asarray(new, dtype=np.uint8)
        if new.shape != doc.mask.shape:
            raise ValueError(f"mask shape {new.shape} does not match the image {doc.mask.shape}")
        bb = changed_bbox(doc.mask, new) or (0, 0, 0, 0)
        y0, x0, y1, x1 = bb
        self.bbox = bb
        self.empty = y1 == y0
        st = doc.store
        self._keys = (st.put(doc.mask[y0:y1, x0:x1]), st.put(new[y0:y1, x0:x1]))

    def _apply(self, which: int) -> None:
        y0, x0, y1, x1 = self.bbox
        if y1 > y0:
            self.doc.mask[y0:y1, x0:x1] = self.doc.store.get(self._keys[which])
            self.doc.mask_changed.emit(self.bbox)

    def redo(self) -> None:
        self._apply(1)

    def undo(self) -> None:
        self._apply(0)

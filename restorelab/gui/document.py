"""The document: a :class:`~restorelab.workspace.Workspace` with signals and undo — no widgets.

Widgets observe a :class:`Document` through its signals; every edit goes through
:meth:`Document.push` (an undo command) so it can be undone, and commands change the
pixels only through :meth:`write_patch` and :meth:`swap`. After each push the delta store
keeps only what the commands still on the undo stack refer to.

Snapshots: a job reads the image without copying it (:meth:`snapshot`); the next in-place
write after a snapshot first copies the image (copy on write), so a running job or an
autosave never sees a half-applied undo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from restorelab.gui.undo import DeltaCommand, DeltaStore, ImageEdit, MaskCommand, ReplaceImageCommand
from restorelab.workspace import Workspace, mask_to_coverage

Rect = tuple[int, int, int, int]


class Document(QObject):
    """State of one opened image. Signals carry a rectangle ``(y0, x0, y1, x1)`` or None
    (everything changed)."""

    image_changed = Signal(object)
    mask_changed = Signal(object)
    path_changed = Signal()
    dirty_changed = Signal(bool)

    def __init__(
        self,
        image: Any,
        path: str | Path | None = None,
        *,
        bit_depth: int | None = None,
        undo_limit: int = 200,
        memory_budget: int = 768 * 2**20,
    ) -> None:
        super().__init__()
        ws = image if isinstance(image, Workspace) else Workspace.from_image(image, path, bit_depth=bit_depth)
        self.ws = ws
        self._shared = False
        self.display_hint: np.ndarray | None = None
        self.store = DeltaStore(memory_budget)
        self.undo = QUndoStack(self)
        self.undo.setUndoLimit(undo_limit)
        self.undo.cleanChanged.connect(self._clean_changed)
        self.undo.indexChanged.connect(self._prefetch)

    def _clean_changed(self, clean: bool) -> None:
        try:
            self.dirty_changed.emit(not clean)
        except RuntimeError:  # the document is being destroyed
            pass

    # -- state ----------------------------------------------------------------------------
    @property
    def image(self) -> np.ndarray:
        return self.ws.image

    @property
    def original(self) -> np.ndarray:
        return self.ws.original

    @property
    def mask(self) -> np.ndarray:
        return self.ws.mask

    @property
    def path(self) -> Path | None:
        return self.ws.path

    @property
    def saved_path(self) -> Path | None:
        return self.ws.saved_path

    @property
    def bit_depth(self) -> int | None:
        return self.ws.bit_depth

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ws.image.shape

    @property
    def dirty(self) -> bool:
        return not self.undo.isClean()

    @property
    def title(self) -> str:
        p = self.ws.saved_path or self.ws.path
        return p.name if p else "untitled"

    def mask_bool(self) -> np.ndarray:
        """The painted mask as booleans (coverage ≥ 128)."""
        return self.ws.mask_bool()

    def has_mask(self) -> bool:
        return bool(self.ws.mask.any())

    def snapshot(self) -> np.ndarray:
        """The image for a reader on another thread (no copy; the next write copies)."""
        self._shared = True
        return self.ws.image

    # -- the only ways commands change pixels -----------------------------------------------
    def write_patch(self, layer: str, rect: Rect, values: np.ndarray) -> None:
        """Write ``values`` into ``rect`` of ``layer`` ("image" or "mask") and signal it."""
        y0, x0, y1, x1 = rect
        if layer == "image":
            if self._shared:
                self.ws.image = self.ws.image.copy()
                self._shared = False
            self.ws.image[y0:y1, x0:x1] = values
            self.image_changed.emit(rect)
        else:
            self.ws.mask[y0:y1, x0:x1] = values
            self.mask_changed.emit(rect)

    def swap(
        self,
        image: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        rect: Rect | None = None,
        display: np.ndarray | None = None,
    ) -> None:
        """Replace the image array (and the mask when given or when the shape changed).

        ``rect`` is the box where the new array differs (None: everywhere); ``display`` is
        that box (or the whole image) already converted for the canvas, kept in
        :attr:`display_hint` while the signal is delivered."""
        self.ws.image = image
        self._shared = False
        mask_changed = False
        if mask is not None and mask.shape == image.shape[:2]:
            self.ws.mask = np.ascontiguousarray(mask, np.uint8)
            mask_changed = True
        elif self.ws.mask.shape != image.shape[:2]:
            self.ws.mask = np.zeros(image.shape[:2], np.uint8)
            mask_changed = True
        self.display_hint = display
        try:
            self.image_changed.emit(rect)
        finally:
            self.display_hint = None
        if mask_changed:
            self.mask_changed.emit(None)

    # -- edits (all undoable) -------------------------------------------------------------------
    def push(self, cmd: QUndoCommand) -> None:
        if getattr(cmd, "empty", False):
            self._free_unreferenced()
            return
        self.undo.push(cmd)
        self._free_unreferenced()

    def _prefetch(self, index: int) -> None:
        """Have the store read back the spilled deltas of the next undo (command index − 1)
        and the next redo (command index), so neither reads a file on the GUI thread."""
        keys: list[int] = []
        for i in (index - 1, index):
            c = self.undo.command(i) if 0 <= i < self.undo.count() else None
            if isinstance(c, DeltaCommand):
                keys += c.store_keys
        self.store.prefetch(keys)

    def _free_unreferenced(self) -> None:
        keep: set[int] = set()
        for i in range(self.undo.count()):
            c = self.undo.command(i)
            if isinstance(c, DeltaCommand):
                keep.update(c.store_keys)
        self.store.retain(keep)

    def apply_edit(self, edit: ImageEdit, text: str) -> None:
        """Apply a new image prepared off the GUI thread (:class:`ImageEdit`)."""
        self.push(ReplaceImageCommand(self, edit, text))

    def apply_image(self, new: Any, text: str) -> None:
        """Replace the image by ``new`` as one undoable step (only the changed box is kept).
        Compares whole images: for large ones prefer :meth:`apply_edit` from a job."""
        from restorelab.image import as_float_image

        self.apply_edit(ImageEdit(self.image, as_float_image(new, copy=True)), text)

    def apply_mask(self, new: Any, text: str) -> None:
        """Replace the mask by ``new`` (bool, uint8 coverage or float in [0, 1])."""
        self.push(MaskCommand(self, mask_to_coverage(new, self.image.shape[:2]), text))

    def mark_saved(self, path: Path) -> None:
        self.ws.saved_path = Path(path)
        self.undo.setClean()
        self.path_changed.emit()

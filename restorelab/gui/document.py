"""The document: image, original, path, mask, undo stack, dirty flag — no widgets.

Widgets observe a :class:`Document` through its signals; every edit goes through
:meth:`Document.push` (a ``QUndoCommand``) so it can be undone. The image is float32
(H, W) or (H, W, C) in [0, 1] as given by ``restorelab.io.load_image``; the mask is a
uint8 (H, W) array (0 = off, 255 = on, soft values from a soft brush).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from restorelab.gui.undo import DeltaStore, MaskCommand, ReplaceImageCommand


def _check_image(image: Any) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or a.size == 0:
        raise ValueError(f"expected an (H,W) or (H,W,C) image, got shape {a.shape}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return np.ascontiguousarray(a, dtype=np.float32)


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
        self.image = _check_image(image)
        self.original = self.image.copy()
        self.path: Path | None = Path(path) if path else None
        self.saved_path: Path | None = None
        self.bit_depth = bit_depth
        self.mask = np.zeros(self.image.shape[:2], np.uint8)
        self.store = DeltaStore(memory_budget)
        self.undo = QUndoStack(self)
        self.undo.setUndoLimit(undo_limit)
        self.undo.cleanChanged.connect(self._clean_changed)
        self.busy = False
        #: plain data for session files (issue 7): methods, parameters, seeds, results
        self.meta: dict[str, Any] = {}

    def _clean_changed(self, clean: bool) -> None:
        try:
            self.dirty_changed.emit(not clean)
        except RuntimeError:  # the document is being destroyed
            pass

    # -- state ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.image.shape

    @property
    def dirty(self) -> bool:
        return not self.undo.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else "untitled"

    def mask_bool(self) -> np.ndarray:
        """The painted mask as booleans (value ≥ 128)."""
        return self.mask >= 128

    def has_mask(self) -> bool:
        return bool(self.mask.any())

    # -- edits (all undoable) -------------------------------------------------------------------
    def push(self, cmd: QUndoCommand) -> None:
        if getattr(cmd, "empty", False):
            return
        self.undo.push(cmd)

    def apply_image(self, new: Any, text: str) -> None:
        """Replace the image by ``new`` as one undoable step (only the changed box is kept)."""
        self.push(ReplaceImageCommand(self, _check_image(new), text))

    def apply_mask(self, new: Any, text: str) -> None:
        """Replace the mask by ``new`` (bool or uint8) as one undoable step."""
        m = np.asarray(new)
        if m.dtype == bool:
            m = m.astype(np.uint8) * 255
        elif m.dtype != np.uint8:
            m = np.clip(np.asarray(m, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        self.push(MaskCommand(self, m, text))

    def set_image(self, image: np.ndarray, *, mask: np.ndarray | None = None) -> None:
        """Low level (used by undo commands): swap the image, keep or reset the mask."""
        self.image = _check_image(image)
        if mask is not None and mask.shape == self.image.shape[:2]:
            self.mask = np.ascontiguousarray(mask, np.uint8)
        elif self.mask.shape != self.image.shape[:2]:
            self.mask = np.zeros(self.image.shape[:2], np.uint8)
        self.image_changed.emit(None)
        self.mask_changed.emit(None)

    def mark_saved(self, path: Path) -> None:
        self.saved_path = Path(path)
        self.undo.setClean()
        self.path_changed.emit()

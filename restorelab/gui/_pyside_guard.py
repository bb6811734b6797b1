"""Workaround for a reference-count bug of PySide6 6.12.0 on Python < 3.12.

There, ``SignalInstance.emit()`` returns ``True`` without a new reference: every signal
emitted from Python (ours and pyqtgraph's, e.g. on each mouse move) takes one reference
away from the ``True`` singleton, and after a few hundred emissions the interpreter aborts
with "Fatal Python error: bool_dealloc: deallocating True or False". Python ≥ 3.12 makes
``True`` immortal, so the bug is harmless there.

:func:`guard` detects the leak with one probe emission and, only when it is present, gives
``True`` and ``False`` a very large reference count (they are static singletons, never
freed, so an extra count changes nothing else). Remove once PySide6 is fixed or pinned.
"""

from __future__ import annotations

import ctypes
import sys

_done = False


def emit_leaks_true() -> bool:
    """True when ``Signal.emit()`` drops a reference to ``True`` (the 6.12.0 bug)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    p = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        p.sig.emit()
    return sys.getrefcount(True) < before


def guard() -> bool:
    """Apply the workaround if needed; returns True when it was applied."""
    global _done
    if _done or sys.version_info >= (3, 12):
        return False
    _done = True
    if not emit_leaks_true():
        return False
    for obj in (True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    return True

"""The restorelab desktop application (PySide6 + pyqtgraph + superqt).

Only this package imports Qt. It holds no image-processing algorithm: every pixel it
shows is computed by the core (``restorelab.denoise``, ``restorelab.edit``,
``restorelab.prior``, ``restorelab.io``) and driven through the job protocol of
:mod:`restorelab.jobs`. Entry point: :func:`restorelab.gui.app.main`.
"""

from restorelab.gui._pyside_guard import guard as _guard  # noqa: E402

_guard()  # PySide6 6.12.0: emit() leaks a reference to True (see _pyside_guard)

"""restorelab: image restoration built on denoisers.

The core (``restorelab.io``, ``params``, ``jobs``, ``denoise``, ``edit``, ``prior``,
``models``) imports numpy/scipy/torch only, never Qt. The desktop application lives in
``restorelab.gui`` and the command line in ``restorelab.cli``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

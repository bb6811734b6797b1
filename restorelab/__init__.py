"""restorelab: image restoration built on denoisers.

The core (``restorelab.io``, ``params``, ``jobs``, ``denoise``, ``edit``, ``prior``,
``models``) imports numpy/scipy/torch only, never Qt. The desktop application lives in
``restorelab.gui`` and the command line in ``restorelab.cli``.

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set (it only
takes effect when torch is imported afterwards): torch's OpenMP threads then sleep instead
of spinning while they wait. On an idle machine that costs nothing measurable, but when
other programs keep the cores busy, spinning threads steal the time of the working ones:
with one other busy core, a 2-thread forward of the learned denoiser on four 64² images
(one sampler step) took about twice as long with spinning threads as with sleeping ones.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["__version__"]

"""Window benchmarks: the real main window driven offscreen, timed on the GUI thread.

They import Qt, so they live in the GUI package (the core, :mod:`restorelab.bench` included,
never imports Qt); their tables go to BENCHMARKS.md through :mod:`restorelab.bench.report`.
"""

"""Developer tools: the training pipeline of the shipped models.

The documentation screenshots drive the window, so they live in :mod:`restorelab.gui.screenshots`.
"""

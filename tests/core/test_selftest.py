"""``restorelab selftest`` passes only when every part ran and passed."""

from __future__ import annotations

import io
import sys

from restorelab import selftest

PARTS = ("open sample", "denoise", "seamless clone", "sampler (10 steps)", "session file")


def test_a_core_module_that_cannot_import_fails_the_selftest(monkeypatch):
    monkeypatch.setitem(sys.modules, "restorelab.edit", None)  # `import restorelab.edit` raises
    buf = io.StringIO()
    assert selftest.run(out=buf) == 1
    text = buf.getvalue()
    assert "FAIL seamless clone" in text and "restorelab.edit" in text, text
    assert "self-test passed" not in text
    assert "self-test FAILED" in text
    for part in PARTS:
        if part != "seamless clone":
            assert f"ok   {part}" in text, text


def test_a_part_that_cannot_run_because_another_failed_is_not_a_pass(monkeypatch):
    def broken():
        raise RuntimeError("sample is damaged")

    monkeypatch.setattr(selftest, "_sample_image", broken)
    buf = io.StringIO()
    assert selftest.run(out=buf) == 1
    text = buf.getvalue()
    assert "FAIL open sample" in text and "not run" in text and "self-test passed" not in text

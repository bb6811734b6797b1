"""`python -m restorelab.indi.card`: the card of an InDI weights file, run as the command it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from restorelab.indi.net import build_indi
from restorelab.indi.weights import save_indi


def test_card_command_writes_the_training_facts_and_keeps_bench_sections(tmp_path: Path) -> None:
    torch.manual_seed(0)
    w = save_indi(tmp_path / "m.safetensors", build_indi(3, 2, 4), "sr4", 0.002,
                  {"steps": 300, "batch": 16, "patch": 48, "minutes": 1.5, "seed": 0, "ema": 0.999,
                   "loss": "l2", "t_one": 0.5, "val_images": 8, "val_crop": 96,
                   "val_psnr": {"input": 22.77, "N1": 23.68}, "command": "restorelab train --task indi"})
    card = tmp_path / "m.md"
    card.write_text("old text\n\n<!-- bench:x -->\nkept\n<!-- /bench:x -->\n")
    r = subprocess.run([sys.executable, "-m", "restorelab.indi.card", str(w), str(card)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = card.read_text()
    assert "| path times t | 0.5 of each batch at t = 1, the rest U(0, 1] |" in text
    assert "degraded input 22.77 dB, N = 1 answer 23.68 dB" in text
    assert "300 × 16 × 48² (1.5 min)" in text
    assert "old text" not in text and "<!-- bench:x -->\nkept\n<!-- /bench:x -->" in text

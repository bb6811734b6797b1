"""Model cards are rendered from the weights' metadata and keep their benchmark sections."""

from __future__ import annotations

from pathlib import Path

from restorelab.models.card import write_card


def test_card_from_metadata_keeps_bench_sections(tiny_gray_model: Path, tmp_path: Path) -> None:
    from restorelab.bench.report import write_section
    from restorelab.models.weights import read_metadata

    card = tmp_path / "m.md"
    write_section(card, "bfcnn-X", "| σ | PSNR |\n|---|---|\n| 25 | 1.00 |", title="PSNR on X")
    write_card(tiny_gray_model, card, title="Tiny model", notes="Some notes.")
    text = card.read_text()
    md = read_metadata(tiny_gray_model)
    assert text.startswith("# Tiny model")
    assert f"| steps × batch × patch | {md['steps']} × 4 × 16² |" in text
    assert "Some notes." in text and "<!-- bench:bfcnn-X -->" in text and "| 25 | 1.00 |" in text
    write_card(tiny_gray_model, card, title="Again")
    assert card.read_text().count("<!-- bench:bfcnn-X -->") == 1

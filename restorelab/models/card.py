"""Model cards: the header of ``resources/models/*.md`` rendered from a weights file's metadata.

``python -m restorelab.models.card WEIGHTS CARD.md [--log RUN/log.csv] [--title T] [--notes FILE]``
writes the card's description (architecture, data, σ range, steps, command, validation
PSNR, training throughput from the run log) and keeps any ``<!-- bench:... -->`` sections
that ``restorelab bench bfcnn --card CARD.md`` wrote before.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from restorelab.models.weights import load_model

__all__ = ["render_card", "write_card"]


def _throughput(log_csv: Path) -> tuple[float, int] | None:
    """Median patches/s over the logged intervals, and the number of intervals."""
    rows = list(csv.DictReader(log_csv.open()))
    vals = sorted(float(r["patches_per_s"]) for r in rows if r.get("patches_per_s"))
    if not vals:
        return None
    return vals[len(vals) // 2], len(vals)


def render_card(
    weights: str | Path, *, title: str, log_csv: str | Path | None = None, notes: str = ""
) -> str:
    """Markdown description of a model file, every figure read from its metadata or run log."""
    p = Path(weights)
    model, md = load_model(p)
    n_params = sum(t.numel() for t in model.parameters())
    arch = md["arch"]
    if arch == "bfunet":
        arch_text = (
            f"bias-free UNet (`bfunet`): {md['depth']} scales, widths "
            f"{', '.join(str(int(md['width']) * 2**k) for k in range(int(md['depth'])))}, two 3×3 conv + "
            "BF batch norm + ReLU per block, average-pool down, bilinear up, skip concatenation"
        )
    else:
        arch_text = f"DnCNN-shaped BF-CNN (`bfcnn`): {md['depth']} 3×3 conv layers of {md['width']} channels"
    lines = [
        f"# {title}",
        "",
        f"File `{p.name}` ({p.stat().st_size / 1e6:.2f} MB, safetensors, float32, nothing pickled).",
        "",
        "| field | value |",
        "|---|---|",
        f"| architecture | {arch_text} |",
        "| bias-free | no additive constant: bias-free convolutions, norm = x / running SD × gain |",
        f"| parameters | {n_params:,} |",
        f"| receptive-field radius | {model.receptive_radius()} px |",
        f"| MACs per pixel | {model.flops_per_pixel() / 1e3:.0f} k |",
        f"| channels | {md['channels']} |",
        f"| training data | {md.get('data', '?')} |",
        f"| σ range (0..255) | uniform in [{md.get('sigma_min')}, {md.get('sigma_max')}] per patch (blind) |",
        f"| steps × batch × patch | {md.get('steps')} × {md.get('batch')} × {md.get('patch')}² |",
        f"| seed | {md.get('seed')} |",
    ]
    if md.get("val_psnr"):
        vp = json.loads(md["val_psnr"])
        lines.append(
            "| held-out validation PSNR at this checkpoint | "
            + ", ".join(f"σ={k}: {v:.2f} dB" for k, v in vp.items())
            + " |"
        )
    if log_csv and Path(log_csv).is_file():
        tp = _throughput(Path(log_csv))
        if tp:
            lines.append(
                f"| training throughput | {tp[0]:.1f} patches/s (median of {tp[1]} logged intervals, "
                "from the run's log.csv) |"
            )
    lines += ["", "Command that trained it:", "", "```", md.get("command", "?"), "```", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)


def write_card(weights: str | Path, card: str | Path, **kw: object) -> Path:
    """Write (or refresh) the card, keeping its benchmark sections."""
    c = Path(card)
    sections = ""
    if c.exists():
        sections = "\n\n".join(re.findall(r"<!-- bench:.*?<!-- /bench:[^>]*-->", c.read_text(), re.S))
    text = render_card(weights, **kw)  # type: ignore[arg-type]
    from restorelab.safety import atomic_write_text

    atomic_write_text(c, text + ("\n" + sections + "\n" if sections else ""))
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restorelab.models.card")
    ap.add_argument("weights")
    ap.add_argument("card")
    ap.add_argument("--title", default="Bias-free denoiser")
    ap.add_argument("--log", default=None)
    ap.add_argument("--notes", default=None, help="markdown file appended after the description")
    a = ap.parse_args(argv)
    notes = Path(a.notes).read_text() if a.notes else ""
    write_card(a.weights, a.card, title=a.title, log_csv=a.log, notes=notes)
    print(f"wrote {a.card}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

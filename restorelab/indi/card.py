"""Model cards of the InDI networks, every figure read from the weights' header or the run log.

``python -m restorelab.indi.card WEIGHTS CARD.md [--log RUN/log.csv] [--notes FILE]`` writes the
card (architecture, degradation, training data and budget, the command that trained it, the
held-out validation PSNR of the input and of the N = 1 answer) and keeps any
``<!-- bench:... -->`` sections already in it, like :mod:`restorelab.models.card`.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from restorelab.indi.weights import load_indi

__all__ = ["render_indi_card", "write_indi_card"]

_WHAT = {
    "blur": "Gaussian (anisotropic, σ 0.6–3 px) or motion (4–16 px camera path) blur, random 21×21 kernel",
    "sr4": "4× down-sampling with PIL's antialiased bicubic, bicubic up-sampling back to size",
    "jpeg": "a real JPEG round trip (PIL/libjpeg, 4:2:0) at quality 10–40",
}


def _times(t_one: str | None) -> str:
    """The training distribution of t, from the ``t_one`` metadata (absent: U(0, 1])."""
    f = float(t_one) if t_one is not None else 0.0
    return "U(0, 1]" if f == 0 else f"{f:g} of each batch at t = 1, the rest U(0, 1]"


def render_indi_card(weights: str | Path, *, log_csv: str | Path | None = None, notes: str = "") -> str:
    """Markdown description of an InDI weights file."""
    from restorelab.models.card import _throughput

    p = Path(weights)
    model, md = load_indi(p)
    deg = md["degradation"]
    n_params = sum(t.numel() for t in model.parameters())
    widths = ", ".join(str(int(md["width"]) * 2**k) for k in range(int(md["depth"])))
    vp = json.loads(md["val_psnr"]) if md.get("val_psnr") else {}
    lines = [
        f"# InDI restoration network: {deg}",
        "",
        f"File `{p.name}` ({p.stat().st_size / 1e6:.2f} MB, safetensors, float32, nothing pickled). "
        "Inversion by Direct Iteration (Delbracio & Milanfar, TMLR 2023): F(x_t, t) ≈ x on the path "
        "x_t = (1 − t) x + t y + t ε η; restored with `restorelab restore IN OUT --indi "
        f"{deg} --steps N`.",
        "",
        "| field | value |",
        "|---|---|",
        f"| degradation y | {_WHAT[deg]} |",
        f"| ε (path noise) | {float(md['eps']):g} |",
        f"| architecture | the project's UNet with a time embedding (`{md['arch']}`): {md['depth']} scales, "
        f"widths {widths}, {md['time_features']} Fourier features of t as extra input maps, "
        "residual output F = x_t + g |",
        f"| parameters | {n_params:,} |",
        f"| receptive-field radius | {model.receptive_radius()} px (the tile overlap of the restoration) |",
        f"| training data | {md.get('data', '?')} (colour) |",
        f"| steps × batch × patch | {md.get('steps')} × {md.get('batch')} × {md.get('patch')}² "
        f"({md.get('minutes', '?')} min) |",
        f"| seed | {md.get('seed')} |",
        f"| path times t | {_times(md.get('t_one'))} |",
    ]
    if md.get("ema") is not None:
        lines.append(f"| shipped weights | exponential moving average, decay {md['ema']}; "
                     f"loss {md.get('loss', 'l2')} |")
    if vp:
        lines.append(f"| held-out validation PSNR ({md.get('val_images', '?')} centre crops of "
                     f"{md.get('val_crop', '?')}², fixed degradations) | degraded input "
                     f"{vp.get('input', 0):.2f} dB, N = 1 answer {vp.get('N1', 0):.2f} dB |")
    if log_csv and Path(log_csv).is_file():
        tp = _throughput(Path(log_csv))
        if tp:
            lines.append(f"| training throughput | {tp[0]:.1f} patches/s (median of {tp[1]} logged "
                         "intervals) |")
    lines += ["", "Command that trained it:", "", "```", md.get("command", "?"), "```", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)


def write_indi_card(weights: str | Path, card: str | Path, **kw: object) -> Path:
    """Write (or refresh) the card, keeping its benchmark sections."""
    c = Path(card)
    sections = ""
    if c.exists():
        sections = "\n\n".join(re.findall(r"<!-- bench:.*?<!-- /bench:[^>]*-->", c.read_text(), re.S))
    text = render_indi_card(weights, **kw)  # type: ignore[arg-type]
    from restorelab.safety import atomic_write_text

    atomic_write_text(c, text + ("\n" + sections + "\n" if sections else ""))
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restorelab.indi.card")
    ap.add_argument("weights")
    ap.add_argument("card")
    ap.add_argument("--log", default=None)
    ap.add_argument("--notes", default=None, help="markdown file appended after the description")
    a = ap.parse_args(argv)
    notes = Path(a.notes).read_text() if a.notes else ""
    write_indi_card(a.weights, a.card, log_csv=a.log, notes=notes)
    print(f"wrote {a.card}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


#!/usr/bin/env bash
# Train the shipped gray and colour denoisers to the recipe on one GPU (about 11 minutes of
# device time: 5.0 + 3.5 minutes of training, the rest start-up and benchmarks), then write
# the weights, run logs, model cards, PSNR/speed tables and resumable checkpoints to $OUT.
#
#   DATA=data OUT=/somewhere bash packaging/train_models.sh            # on the GPU machine
#   DEVICE=cpu DATA=/work/shared/data OUT=/tmp/smoke \
#     bash packaging/train_models.sh --tiny --budget-steps 4 --bench-limit 1 --speed-size 64
#                                                                       # CPU smoke test
#
# DATA holds Train400/, BSDS500-color/{train,test}/, BSD68/ and CBSD68/ (copy them into the
# git-ignored data/ folder of the checkout on the GPU machine). Every step is
# `python -m restorelab.tools.train_models` (see its docstring); extra arguments are passed on.
#
# Resuming: if RESUME_DIR (default docs/training/checkpoints) holds gray.ckpt / color.ckpt,
# each run continues that schedule exactly (weights, optimizer, EMA, schedule position,
# sampler state). To spread one longer schedule over several leases, set GRAY_TOTAL_MIN /
# COLOR_TOTAL_MIN (the minutes the cosine anneals over) above GRAY_MIN / COLOR_MIN (this
# lease's minutes), then copy $OUT/checkpoints/*.ckpt into docs/training/checkpoints/ and
# commit them; the next lease's run continues where this one stopped.
#
# Environment (defaults in brackets): PY [python3], DEVICE [cuda], DATA [data], OUT (required),
# GRAY_MIN [5.0], COLOR_MIN [3.5], GRAY_TOTAL_MIN, COLOR_TOTAL_MIN [= this lease],
# RESUME_DIR [docs/training/checkpoints], COMPILE [auto: torch.compile on CUDA], DIGITS_MIN [0:
# skip the digits prior; >0 retrains it with `restorelab train` as documented in its card],
# TRAIN_SPEED_MODES [empty: skip; e.g. none,default,reduce-overhead times each training-step
# path with `restorelab bench train-speed`, about a minute of compilation per compiled mode].
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-data}
OUT=${OUT:-${OUTDIR:-}}  # OUTDIR: the name older runs used
OUT=${OUT:?set OUT to the folder the results go to}
GRAY_MIN=${GRAY_MIN:-5.0}
COLOR_MIN=${COLOR_MIN:-3.5}
RESUME_DIR=${RESUME_DIR:-docs/training/checkpoints}
COMPILE=${COMPILE:-auto}
DIGITS_MIN=${DIGITS_MIN:-0}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
stage() { echo "=== $(date -u +%H:%M:%S) $*"; }

stage "device"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"

totals=()
[ -n "${GRAY_TOTAL_MIN:-}" ] && totals+=(--gray-total-min "$GRAY_TOTAL_MIN")
[ -n "${COLOR_TOTAL_MIN:-}" ] && totals+=(--color-total-min "$COLOR_TOTAL_MIN")

stage "gray ${GRAY_MIN} min, colour ${COLOR_MIN} min"
"$PY" -m restorelab.tools.train_models --data "$DATA" --out "$OUT" --device "$DEVICE" \
    --gray-min "$GRAY_MIN" --color-min "$COLOR_MIN" "${totals[@]}" --resume-dir "$RESUME_DIR" \
    --compile "$COMPILE" "$@" 2>&1 | tee "$OUT/console.log"

if [ "$DIGITS_MIN" != "0" ]; then
    stage "digits prior, $DIGITS_MIN min"
    "$PY" -m restorelab train --data mnist --channels 1 --sigma-max 255 --arch bfunet --depth 3 \
        --width 32 --steps 10000000 --batch 256 --patch 28 --lr 1e-3 --warmup 100 --device "$DEVICE" \
        --seed 0 --val-every 500 --quiet --max-minutes "$DIGITS_MIN" --run-dir "$OUT/runs/digits" \
        --out "$OUT/bfcnn_digits.safetensors" 2>&1 | tee -a "$OUT/console.log"
    cp "$OUT/runs/digits/log.csv" "$OUT/digits_log.csv"
fi
if [ -n "${TRAIN_SPEED_MODES:-}" ]; then
    stage "training throughput per step path: $TRAIN_SPEED_MODES"
    "$PY" -m restorelab bench train-speed --modes "$TRAIN_SPEED_MODES" --device "$DEVICE" --patch 48 \
        --batch 512 --out "$OUT/BENCHMARKS.md" 2>&1 | tee -a "$OUT/console.log"
fi
stage "done: ship $OUT/bfcnn_*.safetensors + .md into resources/models/, keep $OUT/checkpoints/*.ckpt in $RESUME_DIR"

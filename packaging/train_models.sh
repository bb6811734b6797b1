#!/usr/bin/env bash
# Train the three shipped denoisers (gray, colour, digits) one after the other, then time
# the fast inference path and run the inverse-problem benchmark with the new gray model.
#
# This is the recipe that produced resources/models/*.safetensors (see each model card).
# Every step is a `restorelab` command; the time budgets (minutes) end each cosine schedule.
#
#   DATA=dir-with-Train400,BSDS500-color,BSD68  OUTDIR=where-to-write  bash packaging/train_models.sh
#
# Environment (defaults in brackets): PY [python3], DEVICE [cuda], GRAY_MIN [4.3],
# COLOR_MIN [2.6], DIGITS_MIN [0.6], WIDTH [32], DEPTH [4], BATCH [256], PATCH [64],
# VAL_EVERY [1500], RUNS [/tmp/restorelab-runs], INVERSE_SIZE [256].
set -u
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:?set DATA to the folder holding Train400, BSDS500-color and BSD68}
OUTDIR=${OUTDIR:?set OUTDIR}
RUNS=${RUNS:-/tmp/restorelab-runs}
GRAY_MIN=${GRAY_MIN:-4.3}
COLOR_MIN=${COLOR_MIN:-2.6}
DIGITS_MIN=${DIGITS_MIN:-0.6}
WIDTH=${WIDTH:-32}
DEPTH=${DEPTH:-4}
BATCH=${BATCH:-256}
PATCH=${PATCH:-64}
VAL_EVERY=${VAL_EVERY:-1500}
INVERSE_SIZE=${INVERSE_SIZE:-256}
export PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR" "$RUNS"
rl() { "$PY" -m restorelab "$@"; }
stage() { echo "=== $(date -u +%H:%M:%S) $*"; }

stage "device"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"

common=(--sigma-max 100 --arch bfunet --depth "$DEPTH" --width "$WIDTH" --steps 10000000
        --batch "$BATCH" --patch "$PATCH" --lr 1e-3 --warmup 300 --device "$DEVICE" --seed 0
        --val-every "$VAL_EVERY" --quiet)

stage "gray model, $GRAY_MIN min"
rl train --data "$DATA/Train400" --channels 1 "${common[@]}" --max-minutes "$GRAY_MIN" \
   --run-dir "$RUNS/gray" --out "$OUTDIR/bfcnn_gray.safetensors"
cp "$RUNS/gray/log.csv" "$OUTDIR/gray_log.csv" 2>/dev/null

stage "colour model, $COLOR_MIN min"
rl train --data "$DATA/BSDS500-color/train" "$DATA/BSDS500-color/test" --channels 3 "${common[@]}" \
   --max-minutes "$COLOR_MIN" --run-dir "$RUNS/color" --out "$OUTDIR/bfcnn_color.safetensors"
cp "$RUNS/color/log.csv" "$OUTDIR/color_log.csv" 2>/dev/null

stage "digits model, $DIGITS_MIN min"
rl train --data mnist --channels 1 --sigma-max 255 --arch bfunet --depth 3 --width "$WIDTH" \
   --steps 10000000 --batch "$BATCH" --patch 28 --lr 1e-3 --warmup 100 --device "$DEVICE" --seed 0 \
   --val-every 500 --quiet --max-minutes "$DIGITS_MIN" --run-dir "$RUNS/digits" \
   --out "$OUTDIR/bfcnn_digits.safetensors"
cp "$RUNS/digits/log.csv" "$OUTDIR/digits_log.csv" 2>/dev/null

stage "fast inference vs plain forward"
rl bench bfcnn-speed --size 1024 --device "$DEVICE" --model "$OUTDIR/bfcnn_gray.safetensors" \
   --repeats 10 --out "$OUTDIR/bench_device.md"

stage "inverse problems at ${INVERSE_SIZE}²"
timeout 60 "$PY" -m restorelab bench inverse --set "$DATA/BSD68" --size "$INVERSE_SIZE" --samples 4 \
   --limit 2 --seed 0 --device "$DEVICE" --model "$OUTDIR/bfcnn_gray.safetensors" \
   --out "$OUTDIR/bench_device.md"
stage "done"

#!/usr/bin/env bash
# Issue 11's ablation of the CNN recipe, at a size two CPU cores afford: the small preset, 10
# epochs, seed 0, each run the recipe of record with one element changed (and the same run in
# fp32: the bf16-vs-fp32 accuracy pair). Checkpoints, cards and epoch logs in models/ablation/
# (the cards are committed, the checkpoints not), table in benchmarks/cnn_ablation.md.
# Usage: bash benchmarks/cnn_ablation.sh [DATA]   (about 6 min a run on 2 cores, 9 for fp32)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013.csv.gz}
FER=${FER:-.venv/bin/fer}
mkdir -p models/ablation
run() {  # NAME, then the options that differ from the recipe of record
  local name=$1; shift
  [ -f "models/ablation/$name.json" ] && [ -z "${FORCE:-}" ] && { echo "have $name"; return; }
  "$FER" train --data "$DATA" --clf cnn --preset small --epochs 10 --cnn-param patience=10 --seed 0 "$@" \
    --log-file "models/ablation/$name.epochs.log" --out "models/ablation/$name.skops"
}
run full --cnn-param ema=0.998
run fp32 --cnn-param ema=0.998 --precision fp32
run no-ema --cnn-param ema=0
run no-smoothing --cnn-param ema=0.998 --cnn-param label_smoothing=0
run no-geometric --cnn-param ema=0.998 --cnn-param max_rotation=0 --cnn-param max_shift=0 --cnn-param max_scale=0
run no-erasing --cnn-param ema=0.998 --cnn-param erasing=0
run mixup --cnn-param ema=0.998 --cnn-param mixup=0.2
run cutmix --cnn-param ema=0.998 --cnn-param cutmix=1.0
.venv/bin/python benchmarks/ablation_table.py models/ablation --out benchmarks/cnn_ablation.md

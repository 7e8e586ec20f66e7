#!/usr/bin/env bash
# Learned features on FER2013: the small CNN trained end to end (the baseline), SVMs on its
# embedding alone and fused with hand-crafted features. Cards in models/ and models/bench/,
# table in benchmarks/learned.md and README.md. Usage: bash benchmarks/learned.sh [DATA]
# (about 45 min on 2 CPU cores: the CNN takes about 30 of them; a GPU: --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013.zip}
FER=${FER:-.venv/bin/fer}
CKPT=models/cnn-small.pt
[ -f models/cnn-small.json ] || "$FER" train --data "$DATA" --clf cnn --preset small --epochs 25 --out models/cnn-small.skops
for features in cnn hog+cnn hog+lbp+landmarks+cnn; do
  name="${features//+/-}_svm"
  [ -f "models/bench/$name.json" ] && [ -z "${FORCE:-}" ] && { echo "have $name"; continue; }
  "$FER" train --data "$DATA" --features "$features" --clf svm --cnn-checkpoint "$CKPT" \
    --out "models/bench/$name.skops" --cache-dir .cache/features
done
.venv/bin/python benchmarks/cards_table.py models/cnn-small.json models/bench/cnn_svm.json \
  models/bench/hog-cnn_svm.json models/bench/hog-lbp-landmarks-cnn_svm.json \
  --out benchmarks/learned.md --readme README.md --section learned \
  --title "Learned features on FER2013" --made-by "bash benchmarks/learned.sh"

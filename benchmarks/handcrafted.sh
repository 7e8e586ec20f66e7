#!/usr/bin/env bash
# The hand-crafted results table: each feature set and their union, with svm and gbm heads,
# trained on FER2013 Training and scored on PublicTest / PrivateTest by `fer train`.
# Models go to models/bench/ (cards committed, model files not); the table to benchmarks/handcrafted.md
# and README.md. Usage: bash benchmarks/handcrafted.sh [DATA]   (about 40 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013.zip}
FER=${FER:-.venv/bin/fer}
for features in hog lbp landmarks hog+lbp+landmarks; do
  for clf in svm gbm; do
    name="${features//+/-}_${clf}"
    if [ -f "models/bench/$name.json" ] && [ -z "${FORCE:-}" ]; then echo "have $name"; continue; fi
    "$FER" train --data "$DATA" --features "$features" --clf "$clf" --out "models/bench/$name.skops" \
      --cache-dir .cache/features
  done
done
.venv/bin/python benchmarks/cards_table.py models/bench/*.json --out benchmarks/handcrafted.md --readme README.md

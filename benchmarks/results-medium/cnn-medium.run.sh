#!/bin/bash
# The CNN run of record: medium preset, bf16, 24 epochs, EMA; resumable (run again after a stop).
cd /work/run-medium
exec /work/main/.venv/bin/python -c "import sys; sys.path.insert(0, '/work/run-medium'); from fer_features.cli import app; app()" \
  train --data ../shared/data/fer2013.csv.gz --clf cnn --preset medium --epochs 24 \
  --cnn-param ema=0.998 --cnn-param patience=24 --seed 0 \
  --log-file /work/runs/medium.epochs.log --out models/cnn-medium.joblib

"""Every ensemble of a set of CNN checkpoints (mean of class probabilities), scored in int8 on PublicTest and PrivateTest.

Each network predicts both splits once per TTA mode (none, flip); each subset's probabilities
are the mean of its members'. Rows are sorted by PublicTest, the selection split; with this
many subsets the best PublicTest is an optimistic pick (a few tenths of a point), which is why
PrivateTest, never used to choose, is printed beside it. ``--speed NAME=CROPS_PER_S`` (each
network's measured int8 crops/s, e.g. from ``benchmarks/int8.py``) adds an estimate of the
ensemble's crops/s: one over the sum of its members' seconds a crop (twice that with flip).

    python benchmarks/gpu_ensembles.py L1=/work/runs/gpu/t-large-1.pt SC=models/cnn-compact-ens.pt ... \\
        --speed L1=4047 --speed SC=20604 --out /work/runs/gpu/ensembles-int8.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="NAME=checkpoint.pt (int8-calibrated: fer quantize)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"))
    ap.add_argument("--speed", action="append", default=[], help="NAME=int8 crops/s of that network")
    ap.add_argument("--out", help="all rows as JSON lines")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()

    from fer_features.datasets import load_fer2013
    from gpu_distill_eval import ensemble_accuracy, split_probabilities  # beside this script

    models = dict(m.split("=", 1) for m in args.models)
    speed = {k: float(v) for k, v in (s.split("=", 1) for s in args.speed)}
    data = load_fer2013(args.data)
    splits = {s: data.split(s) for s in ("PublicTest", "PrivateTest")}
    proba = {(name, tta): split_probabilities(path, tta, "int8", splits) for name, path in models.items() for tta in ("none", "flip")}
    rows = []
    for r in range(1, len(models) + 1):
        for combo in itertools.combinations(models, r):
            for tta in ("none", "flip"):
                row = {"members": "+".join(combo), "tta": tta, **ensemble_accuracy([proba[k, tta] for k in combo], splits)}
                if all(k in speed for k in combo):
                    row["crops_per_s_est"] = round(1 / (sum(1 / speed[k] for k in combo) * (2 if tta == "flip" else 1)))
                rows.append(row)
    rows.sort(key=lambda r: -r["PublicTest"])
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows[: args.top]:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

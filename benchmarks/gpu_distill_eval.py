"""Score the checkpoints of ``benchmarks/gpu_distill.py`` (and ensembles of them) on PublicTest and PrivateTest.

Each checkpoint, and each ensemble given as ``a.pt+b.pt`` (mean of the members' class
probabilities), is scored plainly and with flip TTA, in ``--precision`` (bf16 by default; int8
needs ``fer quantize`` first). Selection reads PublicTest only; PrivateTest is reported.

    python benchmarks/gpu_distill_eval.py /work/runs/gpu/*.pt 't-large-0.pt+t-large-1.pt' --root /work/runs/gpu
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="checkpoints, or ensembles joined by '+'")
    ap.add_argument("--root", default=".", help="folder the ensemble members are named in")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"))
    ap.add_argument("--precision", default="bf16")
    args = ap.parse_args()

    from fer_features.cnn.estimators import CNNClassifier
    from fer_features.datasets import load_fer2013

    data = load_fer2013(args.data)
    splits = {s: data.split(s) for s in ("PublicTest", "PrivateTest")}
    cache: dict = {}

    def proba(path: str, tta: str) -> tuple[np.ndarray, np.ndarray]:
        if (path, tta) not in cache:
            clf = CNNClassifier.from_checkpoint(path, precision=args.precision, device="cpu", tta=tta if tta != "none" else False)
            cache[path, tta] = clf.classes_, {s: clf.predict_proba(X) for s, (X, _) in splits.items()}
        return cache[path, tta]

    for model in args.models:
        members = [m if "+" not in model else str(Path(args.root) / m) for m in model.split("+")]
        row = {"model": model, "precision": args.precision}
        for tta in ("none", "flip"):
            parts = [proba(m, tta) for m in members]
            classes = parts[0][0]
            for split, (_, y) in splits.items():
                p = sum(part[1][split] for part in parts) / len(parts)
                row[f"{split} {tta}"] = round(float(np.mean(classes[p.argmax(1)] == y)), 4)
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

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


def split_probabilities(path: str, tta: str, precision: str, splits: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A checkpoint's class names and its ``predict_proba`` on each split of ``splits`` (name → (X, y)), on the CPU."""
    from fer_features.cnn.estimators import CNNClassifier

    clf = CNNClassifier.from_checkpoint(path, precision=precision, device="cpu", tta=tta if tta != "none" else False)
    return clf.classes_, {s: clf.predict_proba(X) for s, (X, _) in splits.items()}


def ensemble_accuracy(parts: list, splits: dict) -> dict[str, float]:
    """Accuracy on each split of the mean of ``parts`` (outputs of :func:`split_probabilities`)."""
    classes = parts[0][0]
    return {s: round(float(np.mean(classes[(sum(p[1][s] for p in parts) / len(parts)).argmax(1)] == y)), 4) for s, (_, y) in splits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="checkpoints, or ensembles joined by '+'")
    ap.add_argument("--root", default=".", help="folder the ensemble members are named in")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"))
    ap.add_argument("--precision", default="bf16")
    args = ap.parse_args()

    from fer_features.datasets import load_fer2013

    data = load_fer2013(args.data)
    splits = {s: data.split(s) for s in ("PublicTest", "PrivateTest")}
    cache: dict = {}
    for model in args.models:
        members = [m if "+" not in model else str(Path(args.root) / m) for m in model.split("+")]
        row = {"model": model, "precision": args.precision}
        for tta in ("none", "flip"):
            for m in members:
                if (m, tta) not in cache:
                    cache[m, tta] = split_probabilities(m, tta, args.precision, splits)
            accuracy = ensemble_accuracy([cache[m, tta] for m in members], splits)
            row.update({f"{split} {tta}": acc for split, acc in accuracy.items()})
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

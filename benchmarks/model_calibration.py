"""How well the probabilities of trained models match their accuracy: PrivateTest log loss and ECE.

For each model file: accuracy, log loss, expected calibration error (ECE: 15 equal-width bins of
the top probability; Guo et al. 2017, "On calibration of modern neural networks", ICML) and mean
top probability on PrivateTest, as the model gives them and after temperature scaling whose
temperature is fitted on PublicTest (the selection split; PrivateTest chooses nothing). A
temperature below 1 sharpens an underconfident model's probabilities, above 1 softens an
overconfident one's; the predicted labels do not change.

Usage::

    python benchmarks/model_calibration.py models/fer-default.skops models/fer-accurate.skops \\
        --data ../shared/data/fer2013.csv.gz [--out table.md]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import softmax
from sklearn.metrics import log_loss


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)``, row by row."""
    return softmax(np.log(np.clip(proba, 1e-12, 1.0)) / temperature, axis=1)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy − confidence| over equal-width bins of the top probability, weighted by the bins' sizes."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    parser.add_argument("--out", help="also write the table here (Markdown)")
    args = parser.parse_args()

    from fer_features.data.fer2013 import load_fer2013
    from fer_features.persist.files import load_model

    data = load_fer2013(args.data)
    splits = {s: data.split(s) for s in ("PublicTest", "PrivateTest")}
    rows = []
    for path in args.models:
        model = load_model(path)
        classes = [str(c) for c in model.classes_]
        proba, labels = {}, {}
        for split, (X, y) in splits.items():
            proba[split] = model.predict_proba(X)
            labels[split] = np.asarray([classes.index(str(v)) for v in y])
        fit = minimize_scalar(lambda t, labels=labels, proba=proba, classes=classes: log_loss(labels["PublicTest"], tempered(proba["PublicTest"], t), labels=range(len(classes))),
                              bounds=(0.05, 10.0), method="bounded")  # fmt: skip
        p, y = proba["PrivateTest"], labels["PrivateTest"]
        p = p / p.sum(axis=1, keepdims=True)  # scikit-learn's temperature scaling sums to 1 within ~2e-7 only
        for name, q in (("as trained", p), (f"temperature {fit.x:.3f} (PublicTest)", tempered(p, fit.x))):
            rows.append((Path(path).name, name, float(np.mean(q.argmax(1) == y)), log_loss(y, q, labels=range(len(classes))),
                         expected_calibration_error(q, y), float(q.max(1).mean())))  # fmt: skip
    lines = [
        f"PrivateTest of `{Path(args.data).name}` ({len(splits['PrivateTest'][1]):,} faces); temperature fitted on PublicTest "
        f"by log loss. 1-min load {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| model | probabilities | accuracy | log loss | ECE (15 bins) | mean top probability |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {m} | {name} | {acc:.4f} | {nll:.4f} | {ece:.4f} | {conf:.3f} |" for m, name, acc, nll, ece, conf in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        header = f"# Probability calibration of trained models\n\n`python benchmarks/model_calibration.py {' '.join(args.models)} --data {args.data} --out {args.out}`\n\n"
        Path(args.out).write_text(header + text + "\n")


if __name__ == "__main__":
    main()

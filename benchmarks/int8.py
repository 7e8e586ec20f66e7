"""Int8 against bf16 and fp32 inference of CNN checkpoints: PrivateTest accuracy, top-1 agreement, crops/s.

For each checkpoint, :meth:`CNNClassifier.from_checkpoint
<fer_features.cnn.classifier.CNNClassifier.from_checkpoint>` with ``precision`` fp32, bf16 and
int8 (the checkpoint's calibration: ``fer quantize``) predicts the 3,589 PrivateTest crops of
``--data`` in one ``predict_proba`` call (batches of 512, both cores); crops/s is the best of
``--repeats`` calls after a warm-up. Agreement: the share of crops whose top-1 class equals the
fp32 one. Prints a Markdown table and the 1-minute load average before and after.

    python benchmarks/int8.py models/cnn-compact-stem2-ens.pt models/cnn-compact-ens.pt [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def measure(path: str, X: np.ndarray, y: np.ndarray, repeats: int) -> list[dict]:
    from fer_features.cnn.classifier import CNNClassifier

    rows, reference = [], None
    for precision in ("fp32", "bf16", "int8"):
        clf = CNNClassifier.from_checkpoint(path, precision=precision, device="cpu")
        clf.predict_proba(X[:64])  # warm-up (and the int8 network is built here)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            proba = clf.predict_proba(X)
            best = min(best, time.perf_counter() - t)
        top1 = proba.argmax(1)
        reference = top1 if reference is None else reference
        rows.append({
            "checkpoint": Path(path).name, "precision": precision, "crops_per_s": len(X) / best,
            "accuracy": float(np.mean(clf.classes_[top1] == y)), "agreement": float(np.mean(top1 == reference)),
            "load": os.getloadavg()[0],
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()

    import torch

    from fer_features.data.fer2013 import load_fer2013

    X, y = load_fer2013(args.data).split("PrivateTest")
    load_before = os.getloadavg()[0]
    rows = [row for path in args.checkpoints for row in measure(path, X, y, args.repeats)]
    lines = [
        "# CNN inference: int8 against bf16 and fp32",
        "",
        f"`python benchmarks/int8.py {' '.join(args.checkpoints)}{' --out ' + args.out if args.out else ''}`",
        "",
        f"{len(X):,} PrivateTest crops of `{Path(args.data).name}`, one `predict_proba` call (batches of 512; int8 256), "
        f"best of {args.repeats}; agreement: top-1 equal to fp32's.",
        "",
        "| checkpoint | precision | crops/s | PrivateTest accuracy | top-1 agreement with fp32 | 1-min load |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['checkpoint']} | {r['precision']} | {r['crops_per_s']:,.0f} | {r['accuracy']:.4f} | "
            f"{r['agreement']:.4f} | {r['load']:.2f} |"
        )
    lines += [
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, quantized engine "
        f"{torch.backends.quantized.engine}, {platform.platform()}; 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

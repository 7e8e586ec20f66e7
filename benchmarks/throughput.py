"""Extraction throughput of each feature extractor on real FER2013 crops, in images per second.

Usage::

    python benchmarks/throughput.py --data ../shared/data/fer2013.zip --n 2000 \
        --cnn-checkpoint models/cnn-small.pt [--out table.md]

Each extractor is fitted, warmed up on 64 images, then timed on ``--n`` PublicTest crops
(wall clock, one process unless ``--n-jobs``). Extractors whose inputs are missing (a CNN
checkpoint, VGG16 weights) are skipped and say so.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from fer_features.data.fer2013 import load_fer2013
from fer_features.features import make_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--features", default="hog,lbp,landmarks,cnn,dlib-resnet,vgg16")
    parser.add_argument("--cnn-checkpoint")
    parser.add_argument("--vgg16-weights")
    parser.add_argument("--batch-size", type=int, default=256, help="for the torch extractors")
    parser.add_argument("--out")
    args = parser.parse_args()

    X, _ = load_fer2013(args.data).split("PublicTest")
    X = X[: args.n]
    params = {
        "cnn": {"checkpoint": args.cnn_checkpoint, "batch_size": args.batch_size},
        "vgg16": {"weights": args.vgg16_weights, "batch_size": args.batch_size},
    }
    rows = []
    for name in args.features.split(","):
        if (name == "cnn" and not args.cnn_checkpoint) or (name == "vgg16" and not args.vgg16_weights):
            rows.append((name, "skipped: no checkpoint/weights given", ""))
            continue
        union = make_features(name, n_jobs=args.n_jobs, params={name: params[name]} if name in params else None)
        union.fit(X[:64]).transform(X[:64])  # load models, warm caches
        start = time.perf_counter()
        out = union.transform(X)
        seconds = time.perf_counter() - start
        rows.append((name, f"{len(X) / seconds:,.0f}", str(out.shape[1])))
        print(f"{name:12s} {len(X) / seconds:8.0f} img/s  dims {out.shape[1]}", flush=True)
    machine = f"{os.cpu_count()} CPU cores, {platform.platform()}"
    text = (
        "| feature | img/s | dims |\n| --- | --- | --- |\n"
        + "\n".join(f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows)
        + f"\n\n{len(X):,} PublicTest crops, n_jobs={args.n_jobs}, torch batch size {args.batch_size}, on {machine}, "
        f"{time.strftime('%Y-%m-%d')}.\n"
    )
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("# Feature extraction throughput\n\nMade by `python benchmarks/throughput.py "
                     + " ".join(a for a in os.sys.argv[1:]) + "`.\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()

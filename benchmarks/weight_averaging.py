"""Averaging the cycle-end checkpoints of the warm restarts, and recomputing batch-norm statistics.

Stochastic weight averaging (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and
Better Generalization", UAI) averages the weights a cyclical schedule visits; the medium CNN's
cycles (``cnn-medium.pt`` → ``-c2.pt`` → ``-c3.pt``, each a warm restart of the last) are such
points. After averaging, the batch-norm running statistics no longer match the weights and are
recomputed on the Training faces (and their mirror images), in one pass in train mode with a
cumulative average (``momentum=None``), as ``torch.optim.swa_utils.update_bn`` does.

For each checkpoint, each average, and the last checkpoint with recomputed statistics alone,
prints PublicTest (selection) and PrivateTest (report) accuracy, plain and with flip TTA, as a
Markdown table. Writes nothing into ``models/``.

    python benchmarks/weight_averaging.py --data ../shared/data/fer2013.csv.gz \
        models/cnn-medium.pt models/cnn-medium-c2.pt models/cnn-medium-c3.pt
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from fer_features.cnn.train import _float_state, load_checkpoint, net_from_checkpoint, predict_logits, to_tensor
from fer_features.datasets import load_fer2013
from fer_features.torch_utils import autocast, set_cpu_threads, to_channels_last


def recompute_bn(net: torch.nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.nn.Module:
    """Batch-norm running statistics of ``net`` recomputed on ``X`` (n, 1, 48, 48) and its mirror images."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
    net.train()
    dev = torch.device("cpu")
    with torch.no_grad(), autocast(dev, "auto"):
        for i in range(0, len(X), batch_size):
            xb = X[i : i + batch_size].contiguous(memory_format=torch.channels_last)
            net(xb)
            net(torch.flip(xb, dims=[3]))
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="cycle-end checkpoints, oldest first (same network and classes)")
    ap.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    args = ap.parse_args()
    set_cpu_threads()
    load0 = os.getloadavg()[0]
    dev = torch.device("cpu")
    data = load_fer2013(args.data)
    ckpts = {os.path.basename(p): load_checkpoint(p) for p in args.checkpoints}
    last = ckpts[os.path.basename(args.checkpoints[-1])]
    classes = np.asarray(last["classes"])
    for name, ck in ckpts.items():
        if list(ck["classes"]) != list(classes) or ck["mean"] != last["mean"] or ck["std"] != last["std"]:
            raise SystemExit(f"{name}: classes or input normalisation differ from the last checkpoint's")
    X = {s: to_tensor(data.split(s)[0], last["mean"], last["std"]) for s in ("Training", "PublicTest", "PrivateTest")}
    y = {s: data.split(s)[1] for s in ("PublicTest", "PrivateTest")}

    def row(label, net, seconds=None):
        net = to_channels_last(net)
        cells = []
        for split in ("PublicTest", "PrivateTest"):
            for tta in ("none", "flip"):
                logits = predict_logits(net, X[split], dev, 512, tta)
                cells.append(float((classes[logits.argmax(1).numpy()] == y[split]).mean()))
        print(f"| {label} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {'' if seconds is None else f'{seconds:.0f}'} |", flush=True)

    print("| network | PublicTest | PublicTest flip | PrivateTest | PrivateTest flip | BN pass s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, ck in ckpts.items():
        row(name, net_from_checkpoint(ck, dev))
    names = list(ckpts)
    for k in range(2, len(names) + 1):
        chosen = names[-k:]
        states = [_float_state(ckpts[n]) for n in chosen]
        avg = {
            key: sum(s[key] for s in states) / len(states) if states[0][key].is_floating_point() else states[-1][key]
            for key in states[0]
        }
        net = net_from_checkpoint(last, dev)
        net.load_state_dict(avg)
        t = time.perf_counter()
        recompute_bn(to_channels_last(net), X["Training"])
        row("mean of " + " + ".join(chosen) + ", BN recomputed", net, time.perf_counter() - t)
    t = time.perf_counter()
    net = recompute_bn(to_channels_last(net_from_checkpoint(last, dev)), X["Training"])
    row(f"{names[-1]}, BN recomputed", net, time.perf_counter() - t)
    print(f"\n1-min load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after; torch {torch.__version__}")


if __name__ == "__main__":
    main()

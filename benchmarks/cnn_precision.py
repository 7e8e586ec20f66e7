"""CNN speed on this CPU: training step and inference, per preset, fp32 vs bf16, NCHW vs channels_last.

Measures images/s of (a) one training step (augmentation excluded: forward, backward, SGD step,
batch 128) and (b) inference (eval mode, ``torch.inference_mode``, batch 512), for every preset
of :data:`fer_features.cnn.presets.PRESETS`, under float32 and bf16 autocast, with NCHW and
channels_last layouts. Each cell: 2 warm-up iterations, then the median of ``--repeats`` timed
runs of ``--steps`` iterations. Prints a Markdown table and the 1-minute load average before
and after.

    python benchmarks/cnn_precision.py [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from fer_features.cnn.net import build_net
from fer_features.cnn.presets import PRESETS
from fer_features.cnn.recipe import soft_cross_entropy
from fer_features.torch_utils import autocast, native_bf16, set_cpu_threads, to_channels_last


def measure(config: dict, precision: str, channels_last: bool, *, train: bool, batch: int, steps: int, repeats: int) -> float:
    """Images/s of ``steps`` iterations of a training step or an inference pass (median of repeats)."""
    dev = torch.device("cpu")
    torch.manual_seed(0)
    net = to_channels_last(build_net({**config, "n_classes": 7}), channels_last)
    x = torch.randn(batch, 1, 48, 48)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.nn.functional.one_hot(torch.randint(7, (batch,)), 7).float()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step():
        if train:
            net.train()
            with autocast(dev, precision):
                loss = soft_cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            net.eval()
            with torch.inference_mode(), autocast(dev, precision):
                net(x).float()

    for _ in range(2):
        step()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch * steps / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="Markdown file to write the table to")
    args = ap.parse_args()
    set_cpu_threads()
    load0 = os.getloadavg()[0]
    rows = []
    for name in args.presets.split(","):
        cfg = PRESETS[name]
        params = sum(p.numel() for p in build_net({**cfg, "n_classes": 7}).parameters())
        for precision in ("fp32", "bf16"):
            for cl in (False, True):
                tr = measure(cfg, precision, cl, train=True, batch=128, steps=args.steps, repeats=args.repeats)
                inf = measure(cfg, precision, cl, train=False, batch=512, steps=args.steps, repeats=args.repeats)
                rows.append((name, f"{params / 1e6:.2f} M", precision, "channels_last" if cl else "NCHW", tr, inf))
                print(rows[-1], flush=True)
    load1 = os.getloadavg()[0]
    lines = [
        "| preset | parameters | precision | layout | train step img/s (batch 128) | inference img/s (batch 512) |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    lines += [f"| {n} | {p} | {pr} | {lay} | {tr:,.0f} | {inf:,.0f} |" for n, p, pr, lay, tr, inf in rows]
    text = "\n".join(lines)
    meta = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {native_bf16()}; "
        f"1-min load average {load0:.2f} before, {load1:.2f} after"
    )
    print(text)
    print(meta)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(f"# CNN speed: fp32 vs bf16, NCHW vs channels_last\n\n`python benchmarks/cnn_precision.py --out {args.out}`\n\n")
            fh.write(text + "\n\n" + meta + "\n")


if __name__ == "__main__":
    main()

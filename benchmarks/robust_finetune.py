"""One row pair of issue 32's ablation: fine-tune the default model's compact CNN with its recipe's
augmentation, or with augmentation widened towards the robustness benchmark's shifts, then score both.

    python benchmarks/robust_finetune.py --epochs 4 --out /tmp/abl

Both arms start from ``models/cnn-compact-stem2-ens.pt`` and train the same epochs at the same
learning rate on FER2013 Training (best epoch on PublicTest); the "shift-matched" arm widens
rotation to ±25° (the benchmark's largest), scale jitter to ±25% (framing) and random erasing to
probability 0.5 (occlusion). Each checkpoint is then measured with ``fer robustness --split
PublicTest`` (selection data only). Prints one JSON line per arm.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "models" / "cnn-compact-stem2-ens.pt"
ARMS = {"recipe": {}, "shift-matched": {"max_rotation": 25.0, "max_scale": 0.25, "erasing": 0.5}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.csv.gz"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--out", default="/tmp/robust-finetune")
    args = parser.parse_args()

    from fer_features.cnn.checkpoints import load_checkpoint, save_checkpoint
    from fer_features.cnn.loop import train_cnn
    from fer_features.cnn.recipe import TrainConfig
    from fer_features.data.sources import load_data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = load_checkpoint(START)
    data = load_data(args.data)
    train, val = data.usage == "Training", data.usage == "PublicTest"
    X, y, X_val, y_val = data.X[train], data.y[train], data.X[val], data.y[val]  # labels as class indices
    for arm, changes in ARMS.items():
        t = time.perf_counter()
        config = TrainConfig(net=dict(start["config"]["net"]), preset="compact", epochs=args.epochs, lr=args.lr,
                             init_checkpoint=str(START), patience=args.epochs, **changes)  # fmt: skip
        ckpt = train_cnn(X, y, X_val, y_val, config=config, classes=list(data.classes))
        ckpt["classes"] = [str(c) for c in data.classes]  # what a model file needs to name its outputs
        path = save_checkpoint(ckpt, out / f"{arm}.pt")
        train_s = time.perf_counter() - t
        report = out / f"{arm}.json"
        cmd = [sys.executable, "-m", "fer_features.cli", "robustness", "--model", str(path), "--data", args.data,
               "--split", "PublicTest", "--out", str(report)]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        rows = json.loads(report.read_text())
        print(json.dumps({"arm": arm, "changes": changes, "train_seconds": round(train_s), "best_epoch": ckpt.get("best_epoch"),
                          "rows": rows if isinstance(rows, dict) else rows[:0], "report": str(report)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

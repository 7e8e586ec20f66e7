"""The CNN recipe's ablation: each run the recipe of record with one element changed, as a table.

At a size two CPU cores afford: the ``small`` preset, 10 epochs, seed 0, one ``fer train --clf
cnn`` run per row (about 6 minutes a run on 2 cores, 9 for fp32), and the same run in fp32 beside
the bf16 one (the bf16-against-fp32 accuracy pair). Each run's model card (``DIR/NAME.json``)
gives PublicTest (selection) and PrivateTest (report) accuracy, plain and with TTA, and the
per-epoch records; the table gives each run's difference from the run named ``full`` (the
recipe of record) and its cost in time (the median epoch, less sensitive to other work on the
machine than the total). A run whose card exists is not run again (``--force`` reruns it), so a
stopped ablation picks up where it was, and ``--table-only`` remakes the table from the cards.

Usage::

    python benchmarks/cnn_ablation.py --data ../shared/data/fer2013.csv.gz [--dir .cache/cnn-ablation] [--out table.md]

The result of record is BENCHMARKS.md, section "CNNs trained on the CPU".
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

#: Run name → (what changes, the ``fer train`` options that differ from the recipe of record).
RUNS = {
    "full": ("recipe of record: EMA 0.998, label smoothing 0.1, flip + rotate ±10° + zoom ±10% + shift ±4 px, erasing 0.25, bf16",
             ["--cnn-param", "ema=0.998"]),
    "fp32": ("the same in float32 (no bf16 autocast)", ["--cnn-param", "ema=0.998", "--precision", "fp32"]),
    "no-ema": ("no weight EMA", ["--cnn-param", "ema=0"]),
    "no-smoothing": ("no label smoothing", ["--cnn-param", "ema=0.998", "--cnn-param", "label_smoothing=0"]),
    "no-geometric": ("no rotation, zoom or shift (flip and erasing kept)",
                     ["--cnn-param", "ema=0.998", "--cnn-param", "max_rotation=0", "--cnn-param", "max_shift=0", "--cnn-param", "max_scale=0"]),
    "no-erasing": ("no random erasing", ["--cnn-param", "ema=0.998", "--cnn-param", "erasing=0"]),
    "mixup": ("+ mixup (alpha 0.2)", ["--cnn-param", "ema=0.998", "--cnn-param", "mixup=0.2"]),
    "cutmix": ("+ CutMix (alpha 1.0)", ["--cnn-param", "ema=0.998", "--cnn-param", "cutmix=1.0"]),
}  # fmt: skip

#: The options every run shares.
BASE = ["--clf", "cnn", "--preset", "small", "--epochs", "10", "--cnn-param", "patience=10", "--seed", "0"]


def fer_command() -> list[str]:
    """``fer`` beside this Python (the project's venv), else the one on the PATH."""
    beside = Path(sys.executable).with_name("fer")
    return [str(beside)] if beside.is_file() else [shutil.which("fer") or "fer"]


def run(name: str, data: str, folder: Path, force: bool) -> None:
    """One ``fer train`` run into ``folder/NAME.skops`` (and its card ``NAME.json``), unless its card exists."""
    if (folder / f"{name}.json").is_file() and not force:
        print(f"have {name}", flush=True)
        return
    cmd = [*fer_command(), "train", "--data", data, *BASE, *RUNS[name][1],
           "--log-file", str(folder / f"{name}.epochs.log"), "--out", str(folder / f"{name}.skops")]  # fmt: skip
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def row(name: str, card: dict, full: dict | None) -> str:
    """One Markdown table row from a run's model card."""
    m = card["metrics"]
    pub, priv = m["PublicTest"]["accuracy"], m["PrivateTest"]["accuracy"]
    flip, ten = m.get("PrivateTest+TTA", {}).get("accuracy"), m.get("PrivateTest+TTA10", {}).get("accuracy")
    epochs = [r["seconds"] for r in card["cnn"]["history"]]
    if full is not None and name != "full":
        fm = full["metrics"]
        delta = f"{pub - fm['PublicTest']['accuracy']:+.4f} | {priv - fm['PrivateTest']['accuracy']:+.4f}"
    else:
        delta = " | "
    cells = [
        name, RUNS[name][0] if name in RUNS else "", f"{pub:.4f}", f"{priv:.4f}", delta,
        f"{flip:.4f}" if flip is not None else "", f"{ten:.4f}" if ten is not None else "",
        f"{m['PrivateTest']['macro_f1']:.4f}", f"{card['cnn']['best_epoch']}/{len(epochs)}",
        f"{statistics.median(epochs):.1f}", f"{card['cnn']['train_seconds']:.0f}",
        f"{card.get('machine', {}).get('load_average_1min', float('nan')):.1f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def table(folder: Path) -> str:
    """The ablation table (Markdown) from the model cards in ``folder``."""
    cards = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    if not cards:
        raise SystemExit(f"{folder}: no model cards (*.json); run the ablation first")
    order = [n for n in RUNS if n in cards] + sorted(set(cards) - set(RUNS))
    head = (
        "| run | what changes | PublicTest | PrivateTest | Δ PublicTest | Δ PrivateTest | PrivateTest flip | "
        "PrivateTest ten-crop | PrivateTest macro-F1 | best epoch | median epoch s | train s | 1-min load at the end |"
    )
    lines = [head, "|" + " --- |" * 2 + " ---: |" * 11] + [row(n, cards[n], cards.get("full")) for n in order]
    first = next(iter(cards.values()))
    machine = first.get("machine", {})
    return "\n".join(lines) + (
        f"\n\nMachine: {machine.get('cpu_count', '?')} CPU cores ({machine.get('processor') or machine.get('platform', '')}); "
        f"data: {first['data']['source']}. Made by `python benchmarks/cnn_ablation.py --dir {folder}`.\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    ap.add_argument("--dir", type=Path, default=Path(".cache/cnn-ablation"), help="models, cards and epoch logs of the runs")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated run names (default: all)")
    ap.add_argument("--force", action="store_true", help="rerun runs whose card exists")
    ap.add_argument("--table-only", action="store_true", help="make the table from the cards in --dir, run nothing")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    args = ap.parse_args()
    if not args.table_only:
        args.dir.mkdir(parents=True, exist_ok=True)
        for name in args.runs.split(","):
            if name not in RUNS:
                raise SystemExit(f"unknown run {name!r}; choose from {', '.join(RUNS)}")
            run(name, args.data, args.dir, args.force)
    text = table(args.dir)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

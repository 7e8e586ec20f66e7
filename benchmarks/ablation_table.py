"""The CNN recipe's ablation (``benchmarks/cnn_ablation.sh``) as a Markdown table, from its model cards.

Each card (``models/ablation/NAME.json``, written by ``fer train --clf cnn``) gives PublicTest
(selection) and PrivateTest (report) accuracy, plain and with TTA, and the per-epoch records of
the run; the table gives each run's difference from the run named ``full`` (the recipe of
record) and its cost in time (the median epoch, less sensitive to other work on the machine
than the total).

    python benchmarks/ablation_table.py models/ablation --out benchmarks/cnn_ablation.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

CHANGES = {
    "full": "recipe of record: EMA 0.998, label smoothing 0.1, flip + rotate ±10° + zoom ±10% + shift ±4 px, erasing 0.25, bf16",
    "fp32": "the same in float32 (no bf16 autocast)",
    "no-ema": "no weight EMA",
    "no-smoothing": "no label smoothing",
    "no-geometric": "no rotation, zoom or shift (flip and erasing kept)",
    "no-erasing": "no random erasing",
    "mixup": "+ mixup (alpha 0.2)",
    "cutmix": "+ CutMix (alpha 1.0)",
}


def row(name: str, card: dict, full: dict | None) -> str:
    m = card["metrics"]
    pub, priv = m["PublicTest"]["accuracy"], m["PrivateTest"]["accuracy"]
    flip, ten = m.get("PrivateTest+TTA", {}).get("accuracy"), m.get("PrivateTest+TTA10", {}).get("accuracy")
    epochs = [r["seconds"] for r in card["cnn"]["history"]]
    delta = ""
    if full is not None and name != "full":
        fm = full["metrics"]
        delta = f"{pub - fm['PublicTest']['accuracy']:+.4f} | {priv - fm['PrivateTest']['accuracy']:+.4f}"
    else:
        delta = " | "
    cells = [
        name, CHANGES.get(name, ""), f"{pub:.4f}", f"{priv:.4f}", delta,
        f"{flip:.4f}" if flip is not None else "", f"{ten:.4f}" if ten is not None else "",
        f"{m['PrivateTest']['macro_f1']:.4f}", f"{card['cnn']['best_epoch']}/{len(epochs)}",
        f"{statistics.median(epochs):.1f}", f"{card['cnn']['train_seconds']:.0f}",
        f"{card.get('machine', {}).get('load_average_1min', float('nan')):.1f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cards = {p.stem: json.loads(p.read_text()) for p in sorted(args.folder.glob("*.json"))}
    if not cards:
        raise SystemExit(f"{args.folder}: no model cards (*.json); run benchmarks/cnn_ablation.sh first")
    order = [n for n in CHANGES if n in cards] + sorted(set(cards) - set(CHANGES))
    full = cards.get("full")
    head = (
        "| run | what changes | PublicTest | PrivateTest | Δ PublicTest | Δ PrivateTest | PrivateTest flip | "
        "PrivateTest ten-crop | PrivateTest macro-F1 | best epoch | median epoch s | train s | 1-min load at the end |"
    )
    lines = [head, "|" + " --- |" * 2 + " ---: |" * 11] + [row(n, cards[n], full) for n in order]
    machine = next(iter(cards.values())).get("machine", {})
    text = "\n".join(lines) + (
        f"\n\nMachine: {machine.get('cpu_count', '?')} CPU cores ({machine.get('processor') or machine.get('platform', '')}); "
        f"data: {next(iter(cards.values()))['data']['source']}. Made by `python benchmarks/ablation_table.py {args.folder}`.\n"
    )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

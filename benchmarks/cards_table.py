"""Render model cards (the JSON beside each trained model) as a Markdown results table.

Usage::

    python benchmarks/cards_table.py models/bench/*.json --out benchmarks/handcrafted.md --readme README.md

With ``--readme``, the table also replaces the text between ``<!-- results:start -->`` and
``<!-- results:end -->`` in that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def table(cards: list[dict]) -> str:
    rows = [
        "| features | classifier | dims → PCA | PublicTest acc | PrivateTest acc | PrivateTest macro-F1 | fit (s) | peak memory (MiB) | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted(cards, key=lambda c: -c["metrics"]["PrivateTest"]["accuracy"]):
        pub, priv = c["metrics"]["PublicTest"], c["metrics"]["PrivateTest"]
        pca = c["params"].get("pca__n_components", "none")
        rows.append(
            f"| {c['features']} | {c['classifier']} | {c.get('feature_dims', '?')} → {pca} | {pub['accuracy']:.4f} | "
            f"{priv['accuracy']:.4f} | {priv['macro_f1']:.4f} | {c['timings']['fit_seconds']:.0f} | "
            f"{c.get('peak_memory_mb', float('nan')):.0f} | `{c['command']}` |"
        )
    first = cards[0]
    machine = first.get("machine", {})
    note = (
        f"\nMeasured {min(c['created'][:10] for c in cards)} on {machine.get('cpu_count', os.cpu_count())} CPU cores "
        f"({machine.get('platform', platform.platform())}), scikit-learn {first['library_versions'].get('scikit-learn')}, "
        f"data fingerprint `{first['data']['fingerprint'][:12]}`. Fit time includes feature extraction on the "
        "28,709 Training faces (from the feature cache where a run reused it); peak memory is the process's "
        "and its workers' resident peak.\n"
    )
    return "\n".join(rows) + "\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    cards = [json.loads(p.read_text()) for p in args.cards]
    text = table(cards)
    if args.out:
        args.out.write_text(f"# Hand-crafted features on FER2013\n\nMade by `bash benchmarks/handcrafted.sh`.\n\n{text}")
    if args.readme:
        readme = args.readme.read_text()
        if START in readme and END in readme:
            head, rest = readme.split(START, 1)
            _, tail = rest.split(END, 1)
            args.readme.write_text(f"{head}{START}\n{text}{END}{tail}")
    print(text)


if __name__ == "__main__":
    main()

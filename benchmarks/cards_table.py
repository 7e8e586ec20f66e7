"""Render model cards (the JSON beside each trained model) as a Markdown results table.

Usage::

    python benchmarks/cards_table.py models/bench/*.json --out benchmarks/handcrafted.md --readme README.md

With ``--readme``, the table also replaces the text between ``<!-- SECTION:start -->`` and
``<!-- SECTION:end -->`` in that file (``--section``, default ``results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

MARKERS = "results"  # README section: <!-- NAME:start --> … <!-- NAME:end -->


def table(cards: list[dict]) -> str:
    rows = [
        "| features | classifier | dims → PCA | PublicTest acc | PrivateTest acc | PrivateTest macro-F1 | fit (s) | peak memory (MiB) | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted(cards, key=lambda c: -c["metrics"]["PrivateTest"]["accuracy"]):
        pub, priv = c["metrics"]["PublicTest"], c["metrics"]["PrivateTest"]
        pca = c["params"].get("pca__n_components", "none")
        dims = f"{c['feature_dims']} → {pca}" if c.get("feature_dims") else "48x48 pixels"
        tta = c["metrics"].get("PrivateTest+TTA")
        private = f"{priv['accuracy']:.4f}" + (f" ({tta['accuracy']:.4f} with TTA)" if tta else "")
        rows.append(
            f"| {c['features']} | {c['classifier']} | {dims} | {pub['accuracy']:.4f} | "
            f"{private} | {priv['macro_f1']:.4f} | {c['timings']['fit_seconds']:.0f} | "
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
    parser.add_argument("--section", default=MARKERS, help="README marker name (default: results)")
    parser.add_argument("--title", default="Hand-crafted features on FER2013")
    parser.add_argument("--made-by", default="bash benchmarks/handcrafted.sh")
    args = parser.parse_args()
    start, end = f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->"
    cards = [json.loads(p.read_text()) for p in args.cards]
    text = table(cards)
    if args.out:
        args.out.write_text(f"# {args.title}\n\nMade by `{args.made_by}`.\n\n{text}")
    if args.readme:
        readme = args.readme.read_text()
        if start in readme and end in readme:
            head, rest = readme.split(start, 1)
            _, tail = rest.split(end, 1)
            args.readme.write_text(f"{head}{start}\n{text}{end}{tail}")
    print(text)


if __name__ == "__main__":
    main()

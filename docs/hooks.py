"""MkDocs hooks: the CLI reference from the typer app, and the benchmark plots from benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PLOTS = ROOT / "benchmarks" / "results"


def cli_reference() -> str:
    """``fer``'s help for every command, as Markdown (typer's own generator, rich markup to HTML)."""
    proc = subprocess.run(
        [sys.executable, "-m", "typer", "fer_features.cli", "utils", "docs", "--name", "fer", "--title", "CLI reference"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    intro = (
        "Generated from the `fer` command itself (`python -m typer fer_features.cli utils docs`) each time the "
        "docs are built, so it cannot drift from `fer --help`.\n\n"
    )
    title, _, rest = proc.stdout.partition("\n")
    return f"{title}\n\n{intro}{rest}"


def on_files(files, config):
    """Add the generated ``cli.md`` and the benchmark's PNG plots (as ``img/results/*.png``)."""
    files.append(File.generated(config, "cli.md", content=cli_reference()))
    for png in sorted(PLOTS.glob("*.png")):
        files.append(File.generated(config, f"img/results/{png.name}", abs_src_path=str(png)))
    return files

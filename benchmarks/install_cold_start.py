"""Install footprint and cold start of fer-features as installed from its wheel, beside the ``fer`` package.

* Footprint: MB of each venv's site-packages (files on disk, ``du``), and the largest
  distributions in it, for fer-features' base install (the wheel and its declared dependencies,
  no extras: ``make check-wheel`` makes that venv) and for the ``fer`` package's venv
  (``../shared/peer/README.md``).
* Cold start: the wall time of a new process from its start to the first prediction on a photo,
  process exit included, for the CLI (``fer predict PHOTO --json``) and the Python API
  (``Recognizer().predict(PHOTO)``), against the package's ``FER().detect_emotions()`` on the same
  photo. The sides alternate, ``--rounds`` times; the first round (files not yet in the page
  cache) is reported apart from the median of the others.

Usage (from the repository root, after ``make check-wheel`` and the peer's install)::

    python benchmarks/install_cold_start.py --ours /tmp/fer-wheel-venv --peer /tmp/peer-venv \
        --photo /tmp/fer-wheel-venv/astronaut.png --rounds 6

Prints one JSON object (also the machine: CPU model, 1-min load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        sys.exit(f"{venv}: no lib/python3*/site-packages: not a venv")
    return found[0]


def mb_on_disk(path: Path) -> float:
    """MiB of the files under ``path`` (``du -sk``: blocks on disk)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def footprint(venv: Path, top: int = 8) -> dict:
    """Total MiB of site-packages and its ``top`` largest entries (folders of distributions)."""
    sp = site_packages(venv)
    sizes = {p.name: mb_on_disk(p) for p in sp.iterdir() if not p.name.endswith((".dist-info", ".pth", "__pycache__"))}
    largest = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:top])
    return {"site_packages_mb": round(mb_on_disk(sp), 1), "largest_mb": {k: round(v, 1) for k, v in largest.items()}}


def wall(cmd: list[str], cwd: str) -> float:
    """Seconds from process start to exit; the command must succeed."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", type=Path, required=True, help="venv with the fer-features wheel (base install)")
    ap.add_argument("--peer", type=Path, required=True, help="venv with the fer package (../shared/peer/README.md)")
    ap.add_argument("--photo", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    photo = str(args.photo.resolve())
    ours, peer = args.ours / "bin", args.peer / "bin"
    commands = {
        "fer-features CLI (fer predict PHOTO --json)": [str(ours / "fer"), "predict", photo, "--json"],
        "fer-features API (Recognizer().predict(PHOTO))": [
            str(ours / "python"), "-c", f"from fer_features import Recognizer; Recognizer().predict({photo!r})",
        ],
        "fer package (FER().detect_emotions(cv2.imread(PHOTO)))": [
            str(peer / "python"), "-c",
            f"import cv2; from fer.fer import FER; FER().detect_emotions(cv2.imread({photo!r}))",
        ],
    }  # fmt: skip
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as cwd:  # outside the repository
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, cwd))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    result = {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "load_1min_before": round(load_before, 2),
                    "load_1min_after": round(os.getloadavg()[0], 2), "platform": platform.platform()},
        "footprint": {"fer-features (base install)": footprint(args.ours), "fer package": footprint(args.peer)},
        "cold_start_seconds": {
            name: {"first": round(ts[0], 2), "median_rest": round(statistics.median(ts[1:]), 2) if len(ts) > 1 else None,
                   "all": [round(t, 2) for t in ts]}
            for name, ts in times.items()
        },
        "command": "python " + " ".join(sys.argv),
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Speed side by side with the `fer` package (the peer), alternating, in one run.

Each round runs two child processes, ours and the peer's (``../shared/peer/fer_package.py`` in
its own venv, see ``../shared/peer/README.md``), the order swapped every round so that neither
always gets the quieter moment. Each child measures, in process:

* crops/s and accuracy on the 3,589 FER2013 PrivateTest crops of the zip: ours is one
  ``predict_proba`` call of ``--model`` on the ``(3589, 48, 48)`` array; the peer's is its own
  classify loop (preprocessing included);
* photo → labels, median ms of 15 calls on ``--photo`` (default: ``skimage.data.astronaut()``
  saved as PNG) after one warm-up: ours :func:`fer_features.inference.photos.predict_photos` on the
  decoded photo (detection, alignment, classification), the peer's ``FER().detect_emotions``.

The 1-minute load average is printed before and after every child: on shared cores only the
ratios measured in the same run mean anything.

    python benchmarks/speed.py --model default --rounds 2      # or accurate, or a model file
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def ours(zip_path: str, model_path: str, photo: str, detector: str | None, precision: str = "auto") -> dict:
    """Our numbers (run in a child process): crops/s, accuracy, photo ms and labels."""
    import numpy as np

    from fer_features.data.fer2013 import load_fer2013
    from fer_features.faces.images import decode_image
    from fer_features.inference.photos import predict_photos
    from fer_features.persist.files import load_model

    model = load_model(model_path, precision=precision)  # precision: a CNN checkpoint's only
    X, y = load_fer2013(zip_path).split("PrivateTest")
    model.predict_proba(X[:8])  # warm: lazy imports, torch start-up
    t = time.perf_counter()
    proba = model.predict_proba(X)
    seconds = time.perf_counter() - t
    pred = np.asarray(model.classes_)[proba.argmax(1)]
    image = decode_image(photo)
    options = {} if detector is None else {"detector": detector}
    (faces,) = predict_photos(model, [image], **options)
    times = []
    for _ in range(15):
        t = time.perf_counter()
        (faces,) = predict_photos(model, [image], **options)
        times.append(time.perf_counter() - t)
    return {
        "crops": {"n": len(X), "accuracy": float(np.mean(pred == y)), "img_per_s": len(X) / seconds},
        "photos": {Path(photo).name: {"ms": 1000 * statistics.median(times), "faces": [f.label for f in faces]}},
    }


def child(cmd: list[str], env: dict | None = None) -> dict:
    load = os.getloadavg()[0]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_avg_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    result["wall_s"] = round(time.perf_counter() - t, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zip", default=str(SHARED / "data/fer2013.zip"))
    ap.add_argument("--model", default=os.environ.get("FER_MODEL", "default"), help="a model file or a bundled model's name")
    ap.add_argument("--photo", default=None, help="default: skimage's astronaut, saved as PNG")
    ap.add_argument("--detector", default=None, help="our face detector (default: the library's)")
    ap.add_argument("--precision", default="auto", help="a CNN checkpoint's inference arithmetic: auto, bf16, fp32, int8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    ap.add_argument("--peer-script", default=str(SHARED / "peer/fer_package.py"))
    ap.add_argument("--ours-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.ours_only:
        print(json.dumps(ours(args.zip, args.model, args.photo, args.detector, args.precision)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo
        if photo is None:
            from PIL import Image
            from skimage import data

            photo = str(Path(tmp) / "astronaut.png")
            Image.fromarray(data.astronaut()).save(photo)
        ours_cmd = [sys.executable, __file__, "--ours-only", "--zip", args.zip, "--model", args.model, "--photo", photo,
                    "--precision", args.precision]
        if args.detector:
            ours_cmd += ["--detector", args.detector]
        peer_cmd = [args.peer_python, args.peer_script, args.zip, photo]
        rows = []
        for r in range(args.rounds):
            order = [("ours", ours_cmd), ("fer package", peer_cmd)]
            for who, cmd in order if r % 2 == 0 else order[::-1]:
                res = child(cmd)
                (name, ph), = res["photos"].items()
                row = {"round": r + 1, "who": who, "crops_per_s": round(res["crops"]["img_per_s"], 1),
                       "accuracy": round(res["crops"]["accuracy"], 4), "photo_ms": round(ph["ms"], 1),
                       "photo_faces": ph["faces"], "load_avg_1min": res["load_avg_1min"], "wall_s": res["wall_s"]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| round | who | crops/s | accuracy | astronaut → labels, median ms | labels | 1-min load before, after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['round']} | {row['who']} | {row['crops_per_s']:,.0f} | {row['accuracy']:.4f} | {row['photo_ms']:.1f} | "
              f"{', '.join(row['photo_faces']) or 'none'} | {row['load_avg_1min'][0]}, {row['load_avg_1min'][1]} |")
    for r in range(1, args.rounds + 1):
        a, b = (next(x for x in rows if x["round"] == r and x["who"] == w) for w in ("ours", "fer package"))
        print(f"round {r}: crops/s ours/peer {a['crops_per_s'] / b['crops_per_s']:.2f}x; "
              f"photo ms ours/peer {a['photo_ms'] / b['photo_ms']:.2f}x")
    print(f"1-min load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

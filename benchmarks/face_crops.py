"""Face crops given as photos: how often the detector misses a tight crop, and what taking it whole gives back.

Aligned face crops of other data sets are often distributed at 64 to 256 pixels with little
margin. Each PublicTest face of ``--data`` is upscaled (bicubic) to each ``--sizes`` side, with
no margin, and goes through :func:`fer_features.faces.alignment.faces_in` with
``whole_if_none=False`` (the detector's faces only); where no face is found, through
:func:`~fer_features.faces.alignment.whole_image_face` too, as ``faces_in`` does by default (a
small, nearly square image taken whole). The model classifies the first face of each way; a
face not found counts as wrong.

    python benchmarks/face_crops.py --model default --sizes 64,100,192
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--model", default="default", help="a bundled model's name or a model file")
    parser.add_argument("--sizes", default="64,100,192", help="comma-separated sides in pixels")
    parser.add_argument("--limit", type=int, default=0, help="faces (smoke test); 0: all")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if 48 in sizes:
        parser.error("a 48x48 image is taken whole without detection: choose other sizes")

    from PIL import Image

    from fer_features.data.sources import load_data
    from fer_features.faces.alignment import faces_in, whole_image_face
    from fer_features.persist.files import load_model

    data = load_data(args.data, limit=args.limit or None)
    X, y = data.split("PublicTest")
    model = load_model(args.model)
    classes = np.asarray(model.classes_)
    for size in sizes:
        t, load = time.perf_counter(), os.getloadavg()[0]
        detected, whole = [], []
        for face in X:
            photo = np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.BICUBIC))
            found = faces_in(photo, whole_if_none=False)[1]
            crop = found[0].crop if found else None
            detected.append(crop)
            if crop is None and (taken := whole_image_face(photo)) is not None:  # what faces_in does next
                crop = taken.crop
            whole.append(crop)
        row = {"model": args.model, "size": size, "faces": len(X)}
        for name, crops in (("detector", detected), ("taken_whole", whole)):
            hit = np.array([c is not None for c in crops])
            correct = np.zeros(len(X), bool)
            if hit.any():
                pred = classes[model.predict_proba(np.stack([c for c in crops if c is not None])).argmax(1)]
                correct[hit] = pred == np.asarray(y)[hit]
            row[name] = {"found": int(hit.sum()), "accuracy": round(float(correct.mean()), 4)}
        row["seconds"], row["load_avg_1min"] = round(time.perf_counter() - t, 1), [round(load, 2), round(os.getloadavg()[0], 2)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

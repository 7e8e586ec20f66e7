"""How much a model loses when FER2013's faces are framed by the photo pipeline instead of FER2013.

    python benchmarks/pipeline_framing.py --model default --split PublicTest

Scores the model on a split's crops three ways: as they are; as the photo pipeline frames them
(each crop upscaled 4x onto a 384-pixel canvas, found by the detector and re-aligned on its eye
points: :func:`fer_features.data.photos.pipeline_views`); and a control that goes through the
same upscaling and resampling but keeps FER2013's framing (the crop cut back out of the canvas
where it was pasted, with the pipeline's anti-aliased warp). The gap between the first and the
third is what resampling costs; between the third and the second, what the new framing costs.
Faces where no face was found are scored on their crop in every column (``found`` says how many
were found). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="a bundled model's name, a model file or a CNN checkpoint")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.csv.gz"))
    parser.add_argument("--split", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    args = parser.parse_args()

    from fer_features.data.photos import crop_as_photo, pipeline_views
    from fer_features.data.sources import load_data
    from fer_features.faces.alignment import align_eyes
    from fer_features.faces.detectors import YuFaceDetector
    from fer_features.persist.files import load_model

    data = load_data(args.data)
    X, y = data.split(args.split)
    t = time.perf_counter()
    views, found = pipeline_views(X)
    seconds = time.perf_counter() - t
    # the control: FER2013's framing through the same upscale and warp (the crop's own eye targets)
    eyes = np.array(YuFaceDetector.fer2013_eyes)
    scale, size = 4, 384
    off = (size - 48 * scale) // 2
    control = np.stack([align_eyes(crop_as_photo(c, scale, size), eyes * scale + off, target=eyes) for c in X])
    model = load_model(args.model)
    labels = np.asarray(y)
    row = {"model": args.model, "split": args.split, "n": len(X), "found": int(found.sum()), "views_seconds": round(seconds, 1)}
    for name, Z in (("crops", X), ("resampled, FER2013 framing", control), ("pipeline framing", views)):
        pred = np.asarray(model.predict(Z))
        row[name] = round(float((pred == labels).mean()), 4)
        row[f"{name}, found only"] = round(float((pred[found] == labels[found]).mean()), 4)
    row["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

"""Where one photo's milliseconds go: decode, detect, align, each feature, each head step.

Median of 15 calls per stage (after one warm-up), in process, on ``--photo`` (default:
``skimage.data.astronaut()`` saved as PNG), for each detector of ``--detectors``; then the
whole ``predict_photos`` call, and the model's ``predict_proba`` per crop on batches of
``--batches`` crops. Prints the 1-minute load average.

    python benchmarks/profile_photo.py --model models/fer-default.skops
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_ms(fn, n: int = 15) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.environ.get("FER_MODEL", "models/fer-default.skops"))
    ap.add_argument("--photo", default=None)
    ap.add_argument("--detectors", default="yuface,hog")
    ap.add_argument("--batches", default="1,4,8", help="crops per predict_proba call for the per-call timings")
    args = ap.parse_args()

    from fer_features.detectors import get_detector
    from fer_features.faces import FER2013_EYES, align_eyes, eye_centres, landmarks_in_box, load_image, to_grey, to_rgb
    from fer_features.persist import load_model
    from fer_features.predict import predict_photos

    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo
        if photo is None:
            from PIL import Image
            from skimage import data

            photo = str(Path(tmp) / "astronaut.png")
            Image.fromarray(data.astronaut()).save(photo)
        out = {"photo": Path(photo).name, "load_avg_1min_start": round(os.getloadavg()[0], 2), "decode_ms": median_ms(lambda: load_image(photo))}
        image = load_image(photo)
    rgb = to_rgb(image)
    grey = to_grey(rgb)
    out["to_grey_ms"] = median_ms(lambda: to_grey(to_rgb(image)))
    for name in args.detectors.split(","):
        det = get_detector(name)
        found = det.detect(rgb)
        row = {"detect_ms": median_ms(lambda: det.detect(rgb)), "faces": len(found)}
        if found:
            d = found[0]
            if d.eyes is not None:
                eyes, target = d.eyes, det.fer2013_eyes
            else:
                row["landmarks68_ms"] = median_ms(lambda: landmarks_in_box(grey, d.box))
                eyes, target = eye_centres(landmarks_in_box(grey, d.box)), FER2013_EYES
            row["align_ms"] = median_ms(lambda: align_eyes(grey, eyes, target=target))
        row["predict_photos_ms"] = median_ms(lambda: predict_photos(model, [image], detector=name))
        out[name] = row
    crop = align_eyes(grey, eye_centres(landmarks_in_box(grey, get_detector("hog").detect(rgb)[0].box)))[None]
    steps = {}
    if "features" in model.named_steps:
        union = model.named_steps["features"]
        for name, tr in union.transformer_list:
            steps[f"feature {name}"] = median_ms(lambda: tr.transform(crop))
        X = union.transform(crop)
        for name, step in model.steps[1:]:
            if name == "clf":
                steps[f"head {name}"] = median_ms(lambda: step.predict_proba(X))
            elif step != "passthrough":
                steps[f"head {name}"] = median_ms(lambda: step.transform(X))
                X = step.transform(X)
    steps["model predict_proba, one crop"] = median_ms(lambda: model.predict_proba(crop))
    for n in map(int, args.batches.split(",")):  # what a call costs per crop as batches grow (fer serve's batching)
        many = np.repeat(crop, n, axis=0)
        steps[f"model predict_proba, {n} crops, ms per crop"] = round(median_ms(lambda: model.predict_proba(many)) / n, 2)
    out["model"] = steps
    out["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

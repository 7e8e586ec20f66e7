"""Face detectors compared on FER2013 crops made photo-sized: detection rate, time, accuracy.

Takes ``--n`` PrivateTest crops (a seeded random sample of the zip), makes each
a photo (upscaled 4x, bicubic, centred on a 320x320 canvas of its border's grey: ``crop_as_photo``)
and runs :func:`fer_features.faces.alignment.find_faces` with each detector, in one process. Per detector:
the share of photos with exactly one face, the median and mean milliseconds per photo
(detection and alignment), and the accuracy of ``--model`` on the re-aligned crops of the
photos where one face was found, beside its accuracy on the original crops of the same photos
(the re-alignment's cost or gain) and on all the originals. ``yuface+landmarks`` is yuface's box
with dlib's 68-point eye centres (``find_faces(..., landmarks=True)``), to compare the two ways
of aligning. MMOD is slow on a CPU: it runs on the first ``--mmod-n`` photos only.

On shared cores the load changes between one detector's pass and the next, so the times of
record come from a second, interleaved pass: on the first ``--time-n`` photos each detector in
turn, photo by photo (``time_ms_interleaved``: median and mean), ``--timing-only`` runs just it.

    python benchmarks/detectors.py --model models/fer-default.skops --n 500
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from fer_features.data.photos import crop_as_photo
from fer_features.faces.alignment import find_faces
from fer_features.persist.files import load_model


def sample_crops(zip_path: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random sample of the zip's PrivateTest crops: crops and labels."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(x for x in zf.namelist() if "/PrivateTest_" in x and x.endswith(".jpg"))
        chosen = sorted(np.random.default_rng(seed).choice(names, size=min(n, len(names)), replace=False))
        crops = np.stack([np.asarray(Image.open(zf.open(x)).convert("L")) for x in chosen])
    return crops, np.array([x.split("/")[1] for x in chosen])


def run_detector(name: str, photos: list[np.ndarray], landmarks: bool | None = None) -> dict:
    """Per photo: the crop if exactly one face was found (else None), and the seconds it took."""
    find_faces(photos[0], detector=name, landmarks=landmarks)  # load the model first
    crops, seconds = [], []
    for photo in photos:
        t = time.perf_counter()
        faces = find_faces(photo, detector=name, landmarks=landmarks)
        seconds.append(time.perf_counter() - t)
        crops.append(faces[0].crop if len(faces) == 1 else None)
    return {"crops": crops, "seconds": np.array(seconds), "several": sum(c is None for c in crops)}


def interleaved_times(photos: list[np.ndarray], specs: list[tuple[str, str, str]]) -> dict:
    """Milliseconds per photo of each detector, the detectors taking turns photo by photo."""
    landmarks = {spec: True if extra == "landmarks" else None for spec, _, extra in specs}
    for spec, name, _ in specs:
        find_faces(photos[0], detector=name, landmarks=landmarks[spec])
    seconds = {spec: [] for spec, _, _ in specs}
    load = os.getloadavg()[0]
    for photo in photos:
        for spec, name, _ in specs:
            t = time.perf_counter()
            find_faces(photo, detector=name, landmarks=landmarks[spec])
            seconds[spec].append(time.perf_counter() - t)
    return {
        "photos": len(photos),
        "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
        "detectors": {k: {"median": round(1000 * float(np.median(v)), 1), "mean": round(1000 * float(np.mean(v)), 1)} for k, v in seconds.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zip", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.zip"))
    ap.add_argument("--model", default="models/fer-default.skops")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--mmod-n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detectors", default="yuface,yuface+landmarks,hog,mmod")
    ap.add_argument("--time-n", type=int, default=50)
    ap.add_argument("--timing-only", action="store_true")
    args = ap.parse_args()

    X, y = sample_crops(args.zip, args.n, args.seed)
    photos = [crop_as_photo(c) for c in X]
    specs = [(spec, *spec.partition("+")[::2]) for spec in args.detectors.split(",")]
    timing = interleaved_times(photos[: args.time_n], specs)
    if args.timing_only:
        print(json.dumps(timing, indent=2))
        return
    model = load_model(args.model)
    original_pred = model.predict(X)
    result = {"photos": len(X), "model": args.model, "accuracy_on_all_originals": round(float(np.mean(original_pred == y)), 4), "detectors": {}}
    for spec in args.detectors.split(","):
        name, _, extra = spec.partition("+")
        n = args.mmod_n if name == "mmod" else len(photos)
        load_before = os.getloadavg()[0]
        run = run_detector(name, photos[:n], landmarks=True if extra == "landmarks" else None)
        found = [i for i, c in enumerate(run["crops"]) if c is not None]
        row = {
            "photos": n,
            "one_face": len(found),
            "detection_rate": round(len(found) / n, 4),
            "ms_per_photo_median": round(1000 * float(np.median(run["seconds"])), 1),
            "ms_per_photo_mean": round(1000 * float(np.mean(run["seconds"])), 1),
        }
        if found:
            pred = model.predict(np.stack([run["crops"][i] for i in found]))
            row["accuracy_on_found_realigned"] = round(float(np.mean(pred == y[found])), 4)
            row["accuracy_on_found_originals"] = round(float(np.mean(original_pred[found] == y[found])), 4)
            row["agreement_with_originals"] = round(float(np.mean(pred == original_pred[found])), 4)
        row["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        row["time_ms_interleaved"] = timing["detectors"][spec]
        result["detectors"][spec] = row
        print(json.dumps({spec: row}), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

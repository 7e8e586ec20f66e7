"""Detection rate on FER2013 crops made photo-sized, through the photo-folder loader.

Takes ``--n`` PrivateTest crops (seeded random sample) from the zip, upscales each ``--scale``
times (bicubic) and centres it on a ``--size`` square filled with the mean grey of the crop's
border, writes them as ``<tmp>/<emotion>/<name>.png`` and loads that folder with
:func:`fer_features.photo_folders.load_photo_folder` (dlib HOG detector, upsample 1). Prints the
share of photos with exactly one face, none, several, per class, and how close the re-aligned
crop is to the original (mean absolute grey-level difference; the alignment re-frames the face, so
this is not zero). Nothing is written outside a temporary folder.

    python benchmarks/data_breadth.py --n 500
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from fer_features.photo_folders import crop_as_photo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zip", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.zip"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args()

    from fer_features.photo_folders import load_photo_folder

    with zipfile.ZipFile(args.zip) as zf, tempfile.TemporaryDirectory() as tmp:
        names = sorted(n for n in zf.namelist() if "/PrivateTest_" in n and n.endswith(".jpg"))
        chosen = sorted(np.random.default_rng(args.seed).choice(names, size=min(args.n, len(names)), replace=False))
        originals = {}
        for n in chosen:
            emotion, file = n.split("/")[1], Path(n).stem
            crop = np.asarray(Image.open(zf.open(n)).convert("L"))
            target = Path(tmp) / emotion / f"{file}.png"
            target.parent.mkdir(exist_ok=True)
            Image.fromarray(crop_as_photo(crop, args.scale, args.size)).save(target)
            originals[f"{emotion}/{file}.png"] = crop
        start = time.perf_counter()
        data = load_photo_folder(tmp, n_jobs=args.n_jobs, cache=False, cache_dir=Path(tmp) / ".cache")
        seconds = time.perf_counter() - start
    problems = dict(data.problems)
    per_class = {}
    for emotion in sorted({k.split("/")[0] for k in originals}):
        keys = [k for k in originals if k.startswith(emotion + "/")]
        per_class[emotion] = {"photos": len(keys), "one_face": sum(k not in problems for k in keys)}
    mad = [np.abs(x.astype(int) - originals[n].astype(int)).mean() for x, n in zip(data.X, data.names)]
    result = {
        "photos": len(originals),
        "one_face": len(data),
        "detection_rate": round(len(data) / len(originals), 4),
        "no_face": sum(p == "no face" for p in problems.values()),
        "several_faces": sum(p.endswith("faces") for p in problems.values()),
        "per_class": per_class,
        "median_abs_diff_to_original": round(float(np.median(mad)), 2) if mad else None,
        "seconds": round(seconds, 1),
        "settings": {k: v for k, v in vars(args).items() if k != "zip"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

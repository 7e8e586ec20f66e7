"""Measure how FER2013 frames its faces, for alignment and landmarking constants.

Runs dlib's HOG face detector on upscaled FER2013 Training crops, and on those where it
finds exactly one face, the 68-point shape predictor in the detected box. Prints the median
face box (fractions of the crop) and the median eye centres (pixels of the 48x48 crop):
the eye centres are ``fer_features.faces.FER2013_EYES``; the box is close to
``LandmarkFeatures``' default ``box`` (see its docstring).

Usage::

    python benchmarks/calibrate_alignment.py --data ../shared/data/fer2013.zip --n 3000
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from fer_features.datasets import load_fer2013
from fer_features.faces import face_detector, landmarks_in_box, LEFT_EYE, RIGHT_EYE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--n", type=int, default=3000, help="Training crops to sample")
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X, _ = load_fer2013(args.data).split("Training")
    rng = np.random.default_rng(args.seed)
    sample = X[rng.choice(len(X), size=min(args.n, len(X)), replace=False)]
    s, size = args.upscale, X.shape[1]
    detector = face_detector("hog")
    boxes, eyes = [], []
    for crop in sample:
        big = np.asarray(Image.fromarray(crop).resize((size * s, size * s), Image.BICUBIC))
        found = detector(big, 0)
        if len(found) != 1:
            continue
        r = found[0]
        box = (r.left(), r.top(), r.right(), r.bottom())
        boxes.append(np.array(box, float) / (size * s))
        points = landmarks_in_box(big, box) / s
        eyes.append([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)])
    boxes, eyes = np.array(boxes), np.array(eyes)
    result = {
        "crops": len(sample),
        "detected_one_face": len(boxes),
        "median_box_fractions": [round(float(v), 2) for v in np.median(boxes, 0)],
        "median_eye_centres_px": [[round(float(v), 1) for v in eye] for eye in np.median(eyes, 0)],
        "eye_centre_iqr_px": [[round(float(v), 1) for v in eye] for eye in np.subtract(*np.percentile(eyes, [75, 25], 0))],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

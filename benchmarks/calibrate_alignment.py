"""Measure how FER2013 frames its faces, for alignment and landmarking constants.

Runs dlib's HOG face detector on upscaled FER2013 Training crops, and on those where it
finds exactly one face, the 68-point shape predictor in the detected box. Prints the median
face box (fractions of the crop) and the median eye centres (pixels of the 48x48 crop):
the eye centres are ``fer_features.faces.alignment.FER2013_EYES``; the box is close to
``LandmarkFeatures``' default ``box`` (see its docstring).

With ``--detector NAME`` for a detector that gives eye points (``yuface``), each upscaled
crop is centred on a photo-sized canvas (``crop_as_photo``: tight crops are not found
otherwise) and the detector's own eye points are measured the same way (pixel ``p`` of the
upscaled crop is ``p / upscale`` in the crop, as for dlib): they are that detector's
``fer2013_eyes``. Where dlib's shape predictor also runs in the detector's box, the median
difference between its eye centres and the detector's is printed too.

Usage::

    python benchmarks/calibrate_alignment.py --data ../shared/data/fer2013.zip --n 3000
    python benchmarks/calibrate_alignment.py --data ../shared/data/fer2013.zip --n 3000 --detector yuface
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from fer_features.data.fer2013 import load_fer2013
from fer_features.data.photos import crop_as_photo
from fer_features.faces.alignment import LEFT_EYE, RIGHT_EYE, eye_centres, landmarks_in_box
from fer_features.faces.detectors import get_detector
from fer_features.faces.dlib_models import face_detector


def calibrate_detector(sample: np.ndarray, name: str, upscale: int) -> dict:
    """Eye points of a detector that gives them, in 48x48 crop pixels (see the module docstring)."""
    detector = get_detector(name)
    size = sample.shape[1] * upscale
    canvas = 2 * size
    off = (canvas - size) // 2
    boxes, eyes, dlib_eyes = [], [], []
    for crop in sample:
        photo = crop_as_photo(crop, upscale, canvas)
        found = detector.detect(photo)
        if len(found) != 1:
            continue
        d = found[0]
        boxes.append((np.array(d.box, float) - off) / size)
        eyes.append((d.eyes - off) / upscale)
        dlib_eyes.append((eye_centres(landmarks_in_box(photo, d.box)) - off) / upscale)
    boxes, eyes, dlib_eyes = np.array(boxes), np.array(eyes), np.array(dlib_eyes)
    return {
        "detector": name,
        "crops": len(sample),
        "detected_one_face": len(boxes),
        "median_box_fractions": [round(float(v), 2) for v in np.median(boxes, 0)],
        "median_eye_points_px": [[round(float(v), 1) for v in eye] for eye in np.median(eyes, 0)],
        "eye_point_iqr_px": [[round(float(v), 1) for v in eye] for eye in np.subtract(*np.percentile(eyes, [75, 25], 0))],
        "median_dlib_eye_centres_in_these_boxes_px": [[round(float(v), 1) for v in eye] for eye in np.median(dlib_eyes, 0)],
        "median_abs_difference_to_dlib_px": round(float(np.median(np.linalg.norm(eyes - dlib_eyes, axis=2))), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--n", type=int, default=3000, help="Training crops to sample")
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detector", default="hog", help="hog (dlib landmarks, the default) or a detector with eye points")
    args = parser.parse_args()

    X, _ = load_fer2013(args.data).split("Training")
    rng = np.random.default_rng(args.seed)
    sample = X[rng.choice(len(X), size=min(args.n, len(X)), replace=False)]
    if args.detector != "hog":
        print(json.dumps(calibrate_detector(sample, args.detector, args.upscale), indent=2))
        return
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

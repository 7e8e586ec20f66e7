"""Emotion of every face in photos: find, align, classify in one batch, annotate."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer_features.datasets import IMAGE_SIZE
from fer_features.detectors import DEFAULT_DETECTOR
from fer_features.faces import find_faces, load_image, to_grey

#: File endings ``fer predict`` picks up when given a folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class FacePrediction:
    """One classified face.

    Attributes
    ----------
    box : tuple of 4 int
        ``(left, top, right, bottom)`` in pixels of the photo.
    label : str
        Most probable emotion.
    probabilities : dict of {str: float}
        Probability per emotion, in the model's ``classes_`` order; sums to 1.
    detection_score : float or None
        dlib's detection score; None for a face crop given directly.
    """

    box: tuple[int, int, int, int]
    label: str
    probabilities: dict[str, float]
    detection_score: float | None = None


@dataclass
class PhotoResult:
    """What was found in one photo: its faces, or the error that stopped it."""

    path: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    width: int = 0
    height: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def is_face_crop(image: np.ndarray) -> bool:
    """True for a 48x48 image, which is taken as an aligned FER2013-style crop, not a photo."""
    return image.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)


def expand_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, and the image files (by suffix, sorted, recursively) of folders given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def predict_photos(
    model,
    images: list[np.ndarray],
    *,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
) -> list[list[FacePrediction]]:
    """Classify every face of several photos with one batched model call.

    Parameters
    ----------
    model : fitted pipeline
        Takes ``(n, 48, 48)`` uint8 crops; has ``predict_proba`` and ``classes_``.
    images : list of ndarray of shape (height, width, 3) or (height, width), dtype uint8
        RGB or grey photos. A 48x48 image is classified directly as a face crop.
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
    upsample : int, optional
        See :func:`fer_features.faces.detect_faces`.
    min_score : float, optional
        See :func:`fer_features.faces.detect_faces`.

    Returns
    -------
    list of list of FacePrediction
        Per photo, its faces by detection score; an empty list where none was found.
    """
    crops, owners, meta = [], [], []
    for i, image in enumerate(images):
        if is_face_crop(image):
            crops.append(to_grey(image))
            owners.append(i)
            meta.append(((0, 0, IMAGE_SIZE, IMAGE_SIZE), None))
            continue
        for face in find_faces(image, detector=detector, upsample=upsample, min_score=min_score):
            crops.append(face.crop)
            owners.append(i)
            meta.append((tuple(int(v) for v in face.box), face.score))
    results: list[list[FacePrediction]] = [[] for _ in images]
    if not crops:
        return results
    proba = model.predict_proba(np.stack(crops))
    classes = [str(c) for c in model.classes_]
    for owner, (box, score), p in zip(owners, meta, proba):
        k = int(np.argmax(p))
        results[owner].append(
            FacePrediction(
                box=box,
                label=classes[k],
                probabilities={c: round(float(v), 4) for c, v in zip(classes, p)},
                detection_score=None if score is None else round(score, 3),
            )
        )
    return results


def predict_paths(
    model, paths: list[str | os.PathLike], *, detector: str = DEFAULT_DETECTOR, upsample: int | None = None, min_score: float | None = None
) -> list[PhotoResult]:
    """Read and classify photos; an unreadable file is reported in its result, not raised.

    Parameters
    ----------
    model : fitted pipeline
    paths : list of path-like
        Image files (folders are expanded by :func:`expand_paths`).
    detector, upsample, min_score
        See :func:`predict_photos`.

    Returns
    -------
    list of PhotoResult
        One per file, in order.
    """
    results, images, readable = [], [], []
    for p in expand_paths(paths):
        try:
            image = load_image(p)
        except (OSError, ValueError) as exc:
            results.append(PhotoResult(path=str(p), error=str(exc)))
            continue
        results.append(PhotoResult(path=str(p), width=image.shape[1], height=image.shape[0]))
        images.append(image)
        readable.append(len(results) - 1)
    for idx, faces in zip(readable, predict_photos(model, images, detector=detector, upsample=upsample, min_score=min_score)):
        results[idx].faces = faces
    return results


def annotate(image: np.ndarray, faces: list[FacePrediction]):
    """Draw each face's box and ``label p`` on a copy of the photo.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    faces : list of FacePrediction

    Returns
    -------
    PIL.Image.Image
        RGB.
    """
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    font_size = max(12, round(max(canvas.size) / 40))
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for face in faces:
        left, top, right, bottom = face.box
        draw.rectangle((left, top, right, bottom), outline=(255, 200, 0), width=width)
        text = f"{face.label} {face.probabilities[face.label]:.2f}"
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        label_h = y1 - y0 + 2 * width
        y = top - label_h if top >= label_h else bottom  # above the box, or below it at the top edge
        draw.rectangle((left, y, left + x1 - x0 + 2 * width, y + label_h), fill=(255, 200, 0))
        draw.text((left + width - x0, y + width - y0), text, fill=(0, 0, 0), font=font)
    return canvas

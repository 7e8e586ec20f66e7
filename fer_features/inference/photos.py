"""Emotion of every face in photos: find, align, classify in one batch, annotate."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer_features.config import DEFAULT_DETECTOR, IMAGE_SUFFIXES
from fer_features.faces.alignment import Face, faces_in


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
    whole_if_none: bool = True,
) -> list[list[FacePrediction]]:
    """Classify every face of several photos with one batched model call (:func:`classify_faces`).

    Parameters
    ----------
    model : fitted pipeline
        Takes ``(n, 48, 48)`` uint8 crops; has ``predict_proba`` and ``classes_``.
    images : list of ndarray of shape (height, width, 3) or (height, width), dtype uint8
        RGB or grey photos. A 48x48 image is classified directly as a face crop, and so is a
        small, nearly square one in which no face is found
        (:func:`~fer_features.faces.alignment.whole_image_face`).
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
    upsample : int, optional
        See :func:`fer_features.faces.alignment.detect_faces`.
    min_score : float, optional
        See :func:`fer_features.faces.alignment.detect_faces`.
    whole_if_none : bool, default=True
        See :func:`fer_features.faces.alignment.faces_in`.

    Returns
    -------
    list of list of FacePrediction
        Per photo, its faces by detection score; an empty list where none was found.
    """
    options = dict(detector=detector, upsample=upsample, min_score=min_score, whole_if_none=whole_if_none)
    return classify_faces(model, [faces_in(image, **options)[1] for image in images])


def classify_faces(model, faces: list[list[Face]]) -> list[list[FacePrediction]]:
    """Classify the faces of several photos with one batched model call.

    Parameters
    ----------
    model : fitted pipeline
        Takes ``(n, 48, 48)`` uint8 crops; has ``predict_proba`` and ``classes_``.
    faces : list of list of Face
        Per photo, its faces (:func:`fer_features.faces.alignment.faces_in`).

    Returns
    -------
    list of list of FacePrediction
        Per photo, a prediction for each of its faces, in their order.
    """
    crops = [face.crop for photo in faces for face in photo]
    results: list[list[FacePrediction]] = [[] for _ in faces]
    if not crops:
        return results
    proba = iter(model.predict_proba(np.stack(crops)))
    classes = [str(c) for c in model.classes_]
    for owner, photo in enumerate(faces):
        for face, p in zip(photo, proba):
            k = int(np.argmax(p))
            results[owner].append(
                FacePrediction(
                    box=tuple(int(v) for v in face.box),
                    label=classes[k],
                    probabilities={c: round(float(v), 4) for c, v in zip(classes, p)},
                    detection_score=None if face.score is None else round(face.score, 3),
                )
            )
    return results


#: Columns of :func:`results_frame` before the per-class probabilities (``p_<class>``) and ``error``.
FRAME_COLUMNS = ("image", "path", "face", "left", "top", "right", "bottom", "detection_score", "label")


def face_rows(faces: list[FacePrediction], classes: list[str]) -> list[dict]:
    """One dict per face (``face``, box, ``detection_score``, ``label``, ``p_<class>``).

    An image with no face gives one row whose face fields are all None, so it is not lost.
    """
    if not faces:
        return [{"face": None, "left": None, "top": None, "right": None, "bottom": None, "detection_score": None,
                 "label": None, **{f"p_{c}": None for c in classes}}]  # fmt: skip
    return [
        {"face": k, "left": f.box[0], "top": f.box[1], "right": f.box[2], "bottom": f.box[3],
         "detection_score": f.detection_score, "label": f.label, **{f"p_{c}": f.probabilities[c] for c in classes}}
        for k, f in enumerate(faces)
    ]  # fmt: skip


def results_frame(results: list[PhotoResult], classes: list[str], *, leading: dict | None = None):
    """Photo results as a pandas DataFrame with one row per face.

    Parameters
    ----------
    results : list of PhotoResult
    classes : list of str
        The model's classes: one ``p_<class>`` column each.
    leading : dict of {str: list}, optional
        Extra first columns, one value per result (e.g. ``frame`` for a video).

    Returns
    -------
    pandas.DataFrame
        Columns ``image`` (index of the input), ``path`` (None for an array), ``face`` (0, 1, …
        within the image), ``left, top, right, bottom`` (pixels), ``detection_score`` (None for a
        crop given directly), ``label``, ``p_<class>`` … and ``error``. An image with no face
        has one row with the face fields empty (``<NA>``); an unreadable file one row with its
        ``error``. Integer columns are pandas' nullable ``Int64``.
    """
    rows = []
    for i, r in enumerate(results):
        first = {k: v[i] for k, v in (leading or {}).items()}
        for row in face_rows(r.faces, classes):
            rows.append({**first, "image": i, "path": r.path, **row, "error": r.error})
    return typed_frame(rows, [*(leading or {}), *FRAME_COLUMNS, *(f"p_{c}" for c in classes), "error"], classes)


def typed_frame(rows: list[dict], columns: list[str], classes: list[str]):
    """Face rows (:func:`face_rows` and more columns) as a DataFrame with nullable integer boxes.

    Parameters
    ----------
    rows : list of dict
    columns : list of str
        The columns, in order.
    classes : list of str
        Their ``p_<class>`` columns are float64.

    Returns
    -------
    pandas.DataFrame
        ``face``, ``left``, ``top``, ``right``, ``bottom`` as ``Int64``; ``detection_score`` and
        the probabilities as ``float64``.
    """
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    for col in ("face", "left", "top", "right", "bottom"):
        frame[col] = frame[col].astype("Int64")
    for col in ("detection_score", *(f"p_{c}" for c in classes)):
        frame[col] = frame[col].astype("float64")
    return frame


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

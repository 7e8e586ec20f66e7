"""Robustness benchmark: a model's accuracy on FER2013 faces under the shifts a real photo brings.

In the spirit of ImageNet-C [1]_: every PublicTest (to select) or PrivateTest (to report) face is
shifted at two or three severities, deterministically (seeded), and the model is scored on the
shifted faces. Eleven shifts, registered by name in :data:`SHIFTS`:

=================  =========================================================  ======================
shift              what is done (48x48 crop unless said)                      severities 1 / 2 / 3
=================  =========================================================  ======================
``framing``        the face, upsampled (bicubic) and feathered into a larger  face 160 px in 320 px,
                   grey photo of smooth noise and a gradient at a seeded      128 in 512, 112 in 640
                   position, found by the detector and aligned by the photo
                   pipeline (:meth:`fer_features.Recognizer.predict_results`)
``rotation``       in-plane rotation about the centre, seeded sign            10, 18, 25 degrees
``blur``           Gaussian blur                                              sigma 0.8, 1.4, 2 px
``jpeg``           JPEG round trip (Pillow)                                   quality 40, 30, 20
``low_resolution`` area-shrunk, then bilinear back to 48 px                   24 px, 16 px
``brightness``     grey levels added, seeded sign                             ±40, ±70, ±100
``contrast``       deviation from the face's mean grey scaled                 x0.5, x0.35, x0.2
``gamma``          ``255 * (x / 255) ** g``, ``g`` or ``1 / g`` (seeded)      g 1.5, 2, 2.8
``noise``          additive Gaussian noise                                    sigma 10, 20, 30 grey
``sunglasses``     two dark lenses (grey 20) on the eyes (FER2013's eye       10x7, 13x9, 16x11 px
                   positions, jittered ±1.5 px)
``hand``           a skin-grey block (120-190, shaded) over mouth and chin    20x12, 26x16, 32x20 px
                   (centre (24, 38) px, jittered ±3 px)
=================  =========================================================  ======================

Crop shifts run on every face of a split (``limit`` to subsample), batched through the model's
``predict``; ``framing`` runs through the detector on a seeded, stratified subsample
(``framing_n``, 1,000 by default) because detection costs about 20 ms a photo. A face the
detector does not find (no detection overlapping the pasted face, IoU ≥ 0.3) counts as wrong.

:func:`run_robustness` gives one row per split, shift and severity (and the clean faces);
:func:`summarize` the mean of each shift over its severities and the overall mean over shifts
(the "shifted PublicTest" number of model selection). :func:`framing_stats` measures where the
eyes are and how large the face is in FER2013's crops and in the pipeline's crops of photos, so a
framing mismatch between the two is visible.

References
----------
.. [1] Hendrycks, D. and Dietterich, T. "Benchmarking neural network robustness to common
       corruptions and perturbations." ICLR 2019. arXiv:1903.12261
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_features.benchmark.shifts import (
    SHIFTS,
    SPLITS,
    RobustnessError,
    framing_photos,
    parse_shifts,
    shift_rng,
)  # fmt: skip
from fer_features.config import DEFAULT_DETECTOR, IMAGE_SIZE

#: Shifted faces go through the model in chunks of this many (bounds the memory of one call).
_CHUNK = 4096
#: A detection is the pasted face when its box overlaps the pasted square this much (IoU).
MIN_IOU = 0.3
#: The label recorded for a face the detector did not find: wrong for every class.
NO_FACE = "no face"


def _iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def predict_framing(recognizer, photos: list[np.ndarray], boxes: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The label the photo pipeline gives each pasted face, or :data:`NO_FACE`.

    Runs :meth:`fer_features.Recognizer.predict_results` (detection, alignment, one model call per
    batch of photos) and keeps, per photo, the highest-scoring face whose box overlaps the pasted
    face by IoU ≥ :data:`MIN_IOU`.

    Returns
    -------
    ndarray of shape (n,), dtype object
    """
    labels = np.full(len(photos), NO_FACE, dtype=object)
    for start in range(0, len(photos), batch_size):
        results = recognizer.predict_results(photos[start : start + batch_size], progress=False)
        for j, result in enumerate(results):
            for face in result.faces:  # highest detection score first
                if _iou(face.box, boxes[start + j]) >= MIN_IOU:
                    labels[start + j] = face.label
                    break
    return labels


# --------------------------------------------------------------------------- scoring


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and balanced accuracy (mean recall over the classes present in ``y_true``).

    A prediction of :data:`NO_FACE` is wrong for every class.
    """
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    correct = y_true == y_pred
    recalls = [correct[y_true == c].mean() for c in np.unique(y_true)]
    return float(correct.mean()), float(np.mean(recalls))


def _sample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a stratified, seeded sample of ``n`` (all, sorted, when ``n`` is 0 or too large)."""
    if not n or n >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    try:
        chosen, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a class too rare to stratify
        chosen = np.random.default_rng(seed).choice(len(labels), size=n, replace=False)
    return np.sort(chosen)


def _predict(model, X: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(model.predict(X[i : i + _CHUNK]), dtype=object) for i in range(0, len(X), _CHUNK)])


#: Columns of :func:`run_robustness`'s frame.
COLUMNS = ("split", "shift", "severity", "level", "n", "found", "accuracy", "balanced_accuracy", "seconds")


def run_robustness(
    model,
    data,
    *,
    splits: Sequence[str] = SPLITS,
    shifts: Sequence[str] | str | None = None,
    limit: int = 0,
    framing_n: int = 1000,
    seed: int = 0,
    detector: str = DEFAULT_DETECTOR,
    trusted: bool = False,
    on_event: Callable[[str, dict], None] | None = None,
) -> pd.DataFrame:
    """Score a model on shifted FER2013 faces: one row per split, shift and severity.

    Parameters
    ----------
    model : str, path-like or fitted estimator
        A bundled model's name (``'default'``, ``'accurate'``), a model file
        (:func:`fer_features.persist.load_model`), or a fitted pipeline taking ``(n, 48, 48)``
        uint8 crops, with ``predict`` and ``classes_``.
    data : str, path-like or FERDataset
        FER2013 (``fer2013.csv.gz`` is the data of record) or FERPlus; anything
        :func:`fer_features.sources.load_dataset` reads that has PublicTest and PrivateTest faces.
    splits : sequence of {'PublicTest', 'PrivateTest'}, default=('PublicTest', 'PrivateTest')
    shifts : sequence of str or str, optional
        Names of :data:`SHIFTS` (a comma-separated string too); default all of them.
    limit : int, default=0
        Faces per split for the crop shifts, a stratified seeded sample; 0: every face.
    framing_n : int, default=1000
        Faces per split made into photos for ``framing`` (stratified, seeded; at most the
        faces of the crop sample); 0 skips ``framing``.
    seed : int, default=0
        Seeds the samples and every shift (:func:`shift_rng`).
    detector : str, default='yuface'
        The photo pipeline's detector for ``framing``.
    trusted : bool, default=False
        Allow a pickle-based model file (see :func:`fer_features.persist.load_model`).
    on_event : callable, optional
        ``on_event(kind, info)`` with ``'row'`` and the row's dict after each condition.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``split``; ``shift`` (``'clean'`` for the unshifted faces, with
        ``severity`` 0); ``severity`` (int, 1 = mildest); ``level`` (the severity in words and
        units); ``n`` (faces scored); ``found`` (share of faces the detector found: ``framing``
        only, else 1.0); ``accuracy`` and ``balanced_accuracy`` (floats in 0..1; a face not found
        is wrong); ``seconds`` (wall time of the row: shifting, detecting and predicting).

    Raises
    ------
    RobustnessError
        For an unknown shift or split, or a split with no faces.
    fer_features.data.fer2013.DataError, FileNotFoundError
        If the data cannot be read.
    fer_features.persist.ModelError
        If the model file cannot be loaded.

    Notes
    -----
    Unlike ImageNet-C, scores are not normalised by a reference model's errors (there is no
    agreed reference network for FER2013): the means are plain accuracies. ``rotation`` turns
    the crop itself; the photo pipeline would undo a head's tilt by aligning on the eyes, so this
    row measures the model's tolerance of the tilt left when the eye points are off.

    Speed: ``framing`` needs idle OpenMP threads to sleep (:mod:`fer_features.threads`, set when
    :mod:`fer_features` is imported before torch): with libgomp's default spinning, on 2 shared
    cores at load 7 after a torch model had run, each ``yuface`` detection took about 1.1 s
    instead of 20 ms.
    """
    from fer_features.data.sources import load_data
    from fer_features.inference.recognizer import Recognizer
    from fer_features.persist.files import load_model

    names = parse_shifts(shifts)
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise RobustnessError(f"unknown split {bad[0] if bad else ''!r}; valid splits: {', '.join(SPLITS)}")
    if limit < 0 or framing_n < 0:
        raise RobustnessError(f"limit and framing_n must be 0 or more, got {limit} and {framing_n}")
    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_model(model, trusted=trusted)
    dataset = load_data(data)
    recognizer = Recognizer(model, detector=detector, progress=False) if "framing" in names and framing_n else None
    rows = []

    def add(row: dict) -> None:
        rows.append(row)
        if on_event is not None:
            on_event("row", row)

    for split in splits:
        X_all, y_all = dataset.split(split)
        if len(y_all) == 0:
            raise RobustnessError(f"{getattr(dataset, 'source', 'the data')}: no {split} faces")
        keep = _sample(y_all, limit, seed)
        X, y = X_all[keep], y_all[keep]
        t = time.perf_counter()
        acc, bal = scores(y, _predict(model, X))
        add(_row(split, "clean", 0, "unshifted", len(y), 1.0, acc, bal, t))
        for name in names:
            spec = SHIFTS[name]
            for severity, level in zip(spec.severities, spec.levels):
                t = time.perf_counter()
                rng = shift_rng(seed, name, severity)
                if spec.apply is None:
                    if recognizer is None:
                        continue
                    pick = _sample(y, framing_n, seed)
                    photos, boxes = framing_photos(X[pick], level, rng)
                    predicted = predict_framing(recognizer, photos, boxes)
                    found = float(np.mean(predicted != NO_FACE))
                    acc, bal = scores(y[pick], predicted)
                    add(_row(split, name, severity, spec.describe(level), len(pick), found, acc, bal, t))
                else:
                    acc, bal = scores(y, _predict(model, spec.apply(X, level, rng)))
                    add(_row(split, name, severity, spec.describe(level), len(y), 1.0, acc, bal, t))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _row(split, shift, severity, level, n, found, acc, bal, start) -> dict:
    return {"split": split, "shift": shift, "severity": severity, "level": level, "n": int(n), "found": round(found, 4),
            "accuracy": acc, "balanced_accuracy": bal, "seconds": round(time.perf_counter() - start, 2)}  # fmt: skip


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Each shift's mean over its severities, and the overall mean over shifts, per split.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`run_robustness`.

    Returns
    -------
    pandas.DataFrame
        Columns ``split, shift, severities, accuracy, balanced_accuracy``: per split the
        ``'clean'`` row, one row per shift (the mean over its severities), and ``'mean'`` (the
        mean over the shifts, each shift weighing the same whatever its number of severities:
        the "shifted" score of that split).
    """
    out = []
    for split, part in frame.groupby("split", sort=False):
        clean = part[part["shift"] == "clean"]
        if len(clean):
            out.append({"split": split, "shift": "clean", "severities": 0, "accuracy": clean["accuracy"].iloc[0],
                        "balanced_accuracy": clean["balanced_accuracy"].iloc[0]})  # fmt: skip
        shifted = part[part["shift"] != "clean"]
        means = shifted.groupby("shift", sort=False)[["accuracy", "balanced_accuracy"]].mean()
        for name, row in means.iterrows():
            severities = int((shifted["shift"] == name).sum())
            out.append({"split": split, "shift": name, "severities": severities, **row.to_dict()})
        if len(means):
            out.append({"split": split, "shift": "mean", "severities": len(shifted), **means.mean().to_dict()})
    return pd.DataFrame(out, columns=["split", "shift", "severities", "accuracy", "balanced_accuracy"])


def card_entry(frame: pd.DataFrame, *, command: str | None = None, settings: dict | None = None) -> dict:
    """A model card's robustness entry (its key: :data:`CARD_KEYS`): per split the clean and shifted means, and each shift's.

    Returns
    -------
    dict
        ``{split: {"clean": {accuracy, balanced_accuracy}, "shifted_mean": {...}, "shifts": {name:
        {...}}}, "command": ..., "settings": ..., "machine": ...}``, floats rounded to 4 digits.
    """
    from fer_features.persist.cards import machine_info

    entry: dict = {}
    for split, part in summarize(frame).groupby("split", sort=False):
        metrics = {r["shift"]: {"accuracy": round(float(r["accuracy"]), 4), "balanced_accuracy": round(float(r["balanced_accuracy"]), 4)}
                   for _, r in part.iterrows()}  # fmt: skip
        entry[split] = {"clean": metrics.pop("clean", None), "shifted_mean": metrics.pop("mean", None), "shifts": metrics}
    entry["command"] = command
    entry["settings"] = settings or {}
    entry["machine"] = machine_info()
    return entry


#: The model card key of each label set's entry: FER2013's labels, the FERPlus majority labels of
#: the same faces (``fer robustness --data fer2013new.csv``), or a folder of labelled photos.
CARD_KEYS = {"FER2013": "robustness", "FERPlus": "robustness_ferplus", "photos": "robustness_photos"}


def label_set(data: str | os.PathLike, data_format: str = "auto") -> str:
    """The labels a data path scores the faces against: a key of :data:`CARD_KEYS`.

    Parameters
    ----------
    data : path-like
        What ``fer robustness --data`` read (:func:`fer_features.data.sources.load_dataset`).
    data_format : {'auto', 'fer2013', 'ferplus', 'photos'}, default='auto'
        ``'auto'`` detects it (:func:`fer_features.data.sources.detect_format`).

    Returns
    -------
    {'FER2013', 'FERPlus', 'photos'}
        ``'FERPlus'`` for ``fer2013new.csv`` (or a folder holding it), ``'photos'`` for a folder of
        labelled photos, else ``'FER2013'``.

    Raises
    ------
    FileNotFoundError
        With ``data_format='auto'``, if ``data`` does not exist.
    """
    from fer_features.data.sources import detect_format

    fmt = detect_format(data) if data_format == "auto" else data_format
    return {"ferplus": "FERPlus", "photos": "photos"}.get(fmt, "FER2013")


def add_to_card(card: str | os.PathLike, frame: pd.DataFrame, *, labels: str = "FER2013", **kwargs) -> Path:
    """Write :func:`card_entry` into a model card file, atomically, under its label set's key.

    Parameters
    ----------
    card : path-like
        A model card (``NAME.json`` beside ``NAME.skops``); the rest of it is kept, the other
        label set's entry too.
    frame : pandas.DataFrame
        From :func:`run_robustness`.
    labels : {'FER2013', 'FERPlus', 'photos'}, default='FER2013'
        The labels the faces were scored against: the entry goes under ``"robustness"``,
        ``"robustness_ferplus"`` or ``"robustness_photos"`` (:data:`CARD_KEYS`).
    **kwargs
        ``command`` and ``settings`` of :func:`card_entry`.

    Returns
    -------
    Path

    Raises
    ------
    RobustnessError
        If the card is missing or not a JSON object, or for a ``labels`` not in :data:`CARD_KEYS`.
    fer_features.persist.OutputError
        If it lies inside the installed package's bundled models (never rewritten by a run).
    """
    from fer_features.persist.outputs import atomic_path, check_writable

    if labels not in CARD_KEYS:
        raise RobustnessError(f"unknown label set {labels!r}; expected one of {', '.join(CARD_KEYS)}")
    path = Path(card)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RobustnessError(f"{path}: cannot read the model card ({exc})") from None
    if not isinstance(data, dict):
        raise RobustnessError(f"{path}: not a model card (a JSON object)")
    check_writable(path, option="--card")
    data[CARD_KEYS[labels]] = card_entry(frame, **kwargs)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_frame(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the rows as ``.csv`` or ``.json`` (records), by suffix, atomically.

    Raises
    ------
    RobustnessError
        For another suffix.
    """
    from fer_features.persist.outputs import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise RobustnessError(f"{path}: write .csv or .json")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            tmp.write_text(frame.to_json(orient="records", indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- framing statistics


def _measure(photo: np.ndarray, off: float, scale: float, landmarks: bool) -> dict | None:
    """Eye points, box and (with dlib) mouth and jaw of the one face of ``photo``, in crop pixels."""
    from fer_features.faces.detectors import get_detector

    found = get_detector("yuface").detect(photo)
    if len(found) != 1:
        return None
    d = found[0]
    def to_crop(p):
        return (np.asarray(p, np.float64) - off) / scale

    eyes = to_crop(d.eyes)
    box = to_crop(np.array(d.box, np.float64).reshape(2, 2))
    out = {"left_eye_x": eyes[0, 0], "left_eye_y": eyes[0, 1], "right_eye_x": eyes[1, 0], "right_eye_y": eyes[1, 1],
           "eye_distance": float(np.linalg.norm(eyes[1] - eyes[0])), "box_width": box[1, 0] - box[0, 0],
           "box_height": box[1, 1] - box[0, 1]}  # fmt: skip
    if landmarks:
        from fer_features.faces.alignment import landmarks_in_box

        pts = to_crop(landmarks_in_box(photo if photo.ndim == 2 else photo[..., 0], d.box))
        out["eye_to_mouth"] = float(pts[48:68, 1].mean() - pts[36:48, 1].mean())
        out["jaw_width"] = float(np.linalg.norm(pts[16] - pts[0]))
    return out


def framing_stats(crops: dict[str, np.ndarray], *, upscale: int = 4) -> pd.DataFrame:
    """Where the eyes are and how large the face is in sets of 48x48 crops, measured one way for all.

    Each crop is upscaled ``upscale`` times and centred on a canvas twice its size
    (:func:`fer_features.data.photos.crop_as_photo`), then measured with ``yuface`` (box and
    eye points) and, where dlib is installed, dlib's 68 landmarks in that box (mouth and jaw);
    everything is converted back to pixels of the 48x48 crop. Comparing FER2013's crops with
    the pipeline's crops of photos shows a framing mismatch: eyes higher or lower, a face
    larger or smaller.

    Parameters
    ----------
    crops : dict of {str: ndarray of shape (n, 48, 48), dtype uint8}
        Named sets of crops, e.g. ``{"FER2013 PublicTest": X, "pipeline, astronaut": ...}``.
    upscale : int, default=4

    Returns
    -------
    pandas.DataFrame
        One row per set: ``set``, ``n``, ``measured`` (crops with exactly one face found), the
        medians of ``left_eye_x, left_eye_y, right_eye_x, right_eye_y, eye_distance, box_width,
        box_height`` and, with dlib, ``eye_to_mouth`` (vertical, eye centres to mouth centre) and
        ``jaw_width`` (landmarks 0 to 16), all in pixels of the 48x48 crop, and
        ``eye_distance_iqr`` (interquartile range: how much the framing varies).
    """
    from fer_features.data.photos import crop_as_photo

    try:
        import dlib  # noqa: F401

        landmarks = True
    except ImportError:  # pragma: no cover - dlib is in the lock
        landmarks = False
    side = IMAGE_SIZE * upscale
    rows = []
    for name, X in crops.items():
        measured = [m for m in (_measure(crop_as_photo(c, upscale, 2 * side), side / 2, upscale, landmarks) for c in X) if m]
        row = {"set": name, "n": len(X), "measured": len(measured)}
        if measured:
            table = pd.DataFrame(measured)
            row.update(table.median().round(1).to_dict())
            q = table["eye_distance"].quantile([0.25, 0.75])
            row["eye_distance_iqr"] = round(float(q.iloc[1] - q.iloc[0]), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def pipeline_crops(photos: Sequence[np.ndarray], detector: str = DEFAULT_DETECTOR, boxes: np.ndarray | None = None) -> np.ndarray:
    """The photo pipeline's aligned crop of the face of each photo (:func:`fer_features.faces.find_faces`).

    Per photo the highest-scoring face (overlapping ``boxes[i]`` by IoU ≥ :data:`MIN_IOU` when
    boxes are given); photos without one are left out.

    Returns
    -------
    ndarray of shape (n_found, 48, 48), dtype uint8
    """
    from fer_features.faces.alignment import find_faces

    out = []
    for i, photo in enumerate(photos):
        for face in find_faces(photo, detector=detector):
            if boxes is None or _iou(face.box, boxes[i]) >= MIN_IOU:
                out.append(face.crop)
                break
    return np.stack(out) if out else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def framing_comparison(data, *, split: str = "PublicTest", n: int = 300, seed: int = 0, detector: str = DEFAULT_DETECTOR) -> pd.DataFrame:
    """:func:`framing_stats` of FER2013's crops beside the pipeline's crops of photos.

    The sets: ``n`` FER2013 crops of ``split`` (stratified, seeded); the pipeline's crops of the
    same faces in the photos of each ``framing`` severity (:func:`framing_photos`, the same seeds
    as :func:`run_robustness`); the pipeline's crops of the faces in scikit-image's
    ``astronaut`` and ``camera`` photos.

    Returns
    -------
    pandas.DataFrame
        As :func:`framing_stats`.
    """
    from skimage import data as skdata

    from fer_features.data.sources import load_data

    dataset = load_data(data)
    X_all, y_all = dataset.split(split)
    X = X_all[_sample(y_all, n, seed)]
    sets = {f"FER2013 {split}": X}  # pipeline crops: framing severities as in SHIFTS["framing"]
    spec = SHIFTS["framing"]
    for severity, level in zip(spec.severities, spec.levels):
        photos, boxes = framing_photos(X, level, shift_rng(seed, "framing", severity))
        sets[f"pipeline, framing {severity}"] = pipeline_crops(photos, detector, boxes)
    for name in ("astronaut", "camera"):
        sets[f"pipeline, skimage {name}"] = pipeline_crops([getattr(skdata, name)()], detector)
    return framing_stats(sets)

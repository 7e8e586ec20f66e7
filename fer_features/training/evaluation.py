"""Scoring a fitted pipeline on a split: accuracy, balanced accuracy, macro-F1, per-class report,
confusion matrix; for photos, the faces found.

A photo folder is scored photo by photo: a photo in which no single face was found (no face, or
several) cannot be classified and counts as a wrong prediction (:data:`NO_FACE`) in every metric.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.utils.validation import check_consistent_length

from fer_features.config import ALL_SPLITS, EMOTIONS, EMOTIONS8, EVAL_SPLITS

#: The prediction recorded for a photo in which no single face was found: wrong for every class.
NO_FACE = "no face"


def evaluate(model, X: np.ndarray, labels: np.ndarray, *, missed=()) -> dict:
    """Score a fitted pipeline on face crops.

    Parameters
    ----------
    model : fitted Pipeline
        Predicts emotion names from ``(n, 48, 48)`` uint8 crops.
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Or what ``model`` takes instead (a feature matrix, also sparse, for a head alone).
        May be empty when ``missed`` is not.
    labels : ndarray of shape (n_samples,), dtype str
        True emotion names.
    missed : array-like of shape (n_missed,), dtype str, default=()
        True emotion names of images that could not be classified (photos in which no single
        face was found). Each counts as a wrong prediction (:data:`NO_FACE`): in ``n``, in the
        accuracies, in its class's recall and support, and in no cell of the confusion matrix.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (:func:`sklearn.metrics.balanced_accuracy_score`:
        the mean recall over the classes among the true labels) and ``macro_f1`` (the mean F1
        over the classes among the true or predicted labels, as :func:`sklearn.metrics.f1_score`
        averages by default: a class that is in neither does not count) (floats in 0..1), ``n`` (images, ``n_samples + n_missed``), ``predict_seconds`` (wall time of
        ``predict``, seconds), ``per_class`` (``{emotion: {precision, recall, f1, support}}``),
        ``confusion_matrix`` (list of lists, rows true, columns predicted, of the
        ``n_samples`` images classified, in :data:`EMOTIONS` order, or :data:`EMOTIONS8` when
        contempt is among the true or predicted labels or the model's classes) and ``labels``
        (that order).

    Raises
    ------
    ValueError
        If there is no image at all, or ``X`` and ``labels`` differ in length.
    """
    labels, missed = np.asarray(labels, dtype=object), np.asarray(missed, dtype=object).reshape(-1)
    check_consistent_length(X, labels)  # X may also be a (sparse) feature matrix, for a head alone
    if len(labels) + len(missed) == 0:
        raise ValueError("nothing to score: no images")
    start = time.perf_counter()
    predicted = np.asarray(model.predict(X), dtype=object) if len(labels) else np.empty(0, dtype=object)
    seconds = time.perf_counter() - start
    seen = {*labels.tolist(), *missed.tolist(), *predicted.tolist(), *map(str, getattr(model, "classes_", ()))}
    order = list(EMOTIONS8 if "contempt" in seen else EMOTIONS)
    y_true = np.concatenate([labels, missed])
    y_pred = np.concatenate([predicted, np.full(len(missed), NO_FACE, dtype=object)])
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=order, zero_division=0)
    with warnings.catch_warnings():  # NO_FACE is a predicted class that is never true: not averaged over
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    present = [e for e in order if e in {*y_true.tolist(), *predicted.tolist()}]  # f1_score's default, less NO_FACE
    cm = confusion_matrix(labels, predicted, labels=order) if len(labels) else np.zeros((len(order),) * 2, np.int64)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "predict_seconds": round(seconds, 6),
        "per_class": {
            e: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, e in enumerate(order)
        },
        "confusion_matrix": cm.tolist(),
        "labels": order,
    }


def default_split(dataset) -> str:
    """The split ``fer evaluate`` scores when none is given.

    ``'all'`` for a folder of photos without split folders (its own split is only a seeded cut
    of the faces found), ``'PrivateTest'`` for every other data set.
    """
    from fer_features.data.photos import PhotoFolderDataset

    if isinstance(dataset, PhotoFolderDataset) and not dataset.split_folders:
        return ALL_SPLITS
    return "PrivateTest"


def evaluate_split(
    model, dataset, split: str = "PrivateTest", *, plot=None, name: str = "model", skip_bad: bool = False
) -> dict:
    """Score a fitted model on one usage split of a data set, or on all of it (``fer evaluate``).

    For a folder of photos (:class:`~fer_features.data.photos.PhotoFolderDataset`) every photo
    of the split is scored: one with exactly one face by the model, one with no face or several
    faces as a wrong prediction (see :func:`evaluate`'s ``missed``). For FER2013 and FERPlus,
    whose images are face crops already, every face of the split is scored (``'all'``: the three
    splits together, Training included).

    Parameters
    ----------
    model : fitted Pipeline
    dataset : FERDataset
    split : {'PrivateTest', 'PublicTest', 'Training', 'all'}, default='PrivateTest'
        ``'all'``: every image. A usage split of a photo folder without split folders is part of
        its seeded split of the faces found, so the photos without a face belong to none and
        only ``'all'`` counts them.
    plot : str or Path, optional
        Also save the confusion matrix here as PNG; nothing is written without it.
    name : str, default='model'
        The model's name, in the plot's title.
    skip_bad : bool, default=False
        Photo folders: leave unreadable photos out of the scores (listed in ``unreadable``)
        instead of raising.

    Returns
    -------
    dict
        ``split``, ``data_fingerprint``, the entries of :func:`evaluate` (``n`` counts every
        image scored, faces found or not), ``face_detection`` (True for photos, whose faces were
        detected; False for face crops), ``faces_found`` (images with exactly one face, the ones
        the model classified: all of them for face crops) and ``faces_found_rate``
        (``faces_found / n``), ``no_face`` and ``several_faces`` (paths, relative to the
        folder, of the photos scored as wrong), ``unreadable`` (paths of the photos left out
        with ``skip_bad``; FER2013's bad files are left out when loading, see
        ``dataset.skipped``) and ``plot`` (its path, or None).

    Raises
    ------
    ValueError
        If ``split`` is not ``'all'`` or one of :data:`USAGES`.
    DataError
        If the split has no images, or holds an unreadable photo and ``skip_bad`` is False (the
        message names the first one).
    """
    from fer_features.data.fer2013 import DataError
    from fer_features.data.photos import PhotoFolderDataset

    if split not in EVAL_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(EVAL_SPLITS)}")
    X, y = (dataset.X, dataset.labels) if split == ALL_SPLITS else dataset.split(split)
    photos = isinstance(dataset, PhotoFolderDataset)
    left = dataset.left_out(split) if photos else []
    unreadable = [(p, problem) for p, _, problem in left if problem.startswith("unreadable")]
    if unreadable and not skip_bad:
        path, problem = unreadable[0]
        more = f" ({len(unreadable)} unreadable photos in all)" if len(unreadable) > 1 else ""
        raise DataError(
            f"{Path(dataset.source) / path}: {problem}{more}; leave unreadable photos out with --skip-bad (skip_bad=True)"
        )
    missed = [(p, c, problem) for p, c, problem in left if not problem.startswith("unreadable")]
    if len(X) + len(missed) == 0:
        raise DataError(f"{dataset.source}: has no {split} images")
    metrics = evaluate(model, X, y, missed=[c for _, c, _ in missed])
    found = len(X)
    faces = {
        "face_detection": photos,
        "faces_found": found,
        "faces_found_rate": found / metrics["n"],
        "no_face": [p for p, _, problem in missed if problem == "no face"],
        "several_faces": [p for p, _, problem in missed if problem != "no face"],
        "unreadable": [p for p, _ in unreadable],
    }
    if plot is not None:
        title = f"{name}, {split} (acc {metrics['accuracy']:.3f}"
        title += f", faces {found}/{metrics['n']})" if photos else ")"
        plot_confusion_matrix(metrics["confusion_matrix"], plot, title=title)
    plotted = str(plot) if plot is not None else None
    return {"split": split, "data_fingerprint": dataset.fingerprint, **metrics, **faces, "plot": plotted}


def plot_confusion_matrix(cm, path: str | Path, *, title: str = "") -> Path:
    """Save a row-normalised confusion matrix as PNG (:func:`fer_features.plotting.confusion_matrix_png`).

    Parameters
    ----------
    cm : array-like of shape (7, 7) or (8, 8), dtype int
        Counts, rows true class, columns predicted, in :data:`EMOTIONS` order (8x8:
        :data:`EMOTIONS8`, FERPlus with contempt).
    path : str or Path
        Output PNG; written atomically.
    title : str, optional

    Returns
    -------
    Path
    """
    from fer_features.plotting import confusion_matrix_png, save_png

    return save_png(confusion_matrix_png(cm, title=title), path)


def format_report(metrics: dict, *, max_listed: int = 10) -> str:
    """The scores as plain text: per-class precision/recall/F1 like sklearn's classification
    report, accuracy, balanced accuracy and macro-F1, and for photos the faces found.

    Parameters
    ----------
    metrics : dict
        As :func:`evaluate` or :func:`evaluate_split` return (the balanced-accuracy and face
        lines need the keys they add).
    max_listed : int, default=10
        Photos named per list (no face, several faces, unreadable); the rest are counted.

    Returns
    -------
    str
    """
    w = 17 if "balanced_accuracy" in metrics else 10
    lines = [f"{'':>{w}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for e, m in metrics["per_class"].items():
        lines.append(f"{e:>{w}} {m['precision']:9.3f} {m['recall']:9.3f} {m['f1']:9.3f} {m['support']:8d}")
    lines.append(f"{'accuracy':>{w}} {'':>9} {'':>9} {metrics['accuracy']:9.3f} {metrics['n']:8d}")
    if "balanced_accuracy" in metrics:
        lines.append(f"{'balanced accuracy':>{w}} {'':>9} {'':>9} {metrics['balanced_accuracy']:9.3f} {metrics['n']:8d}")
    lines.append(f"{'macro-F1':>{w}} {'':>9} {'':>9} {metrics['macro_f1']:9.3f} {metrics['n']:8d}")
    if metrics.get("face_detection"):
        lines.append(
            f"faces found in {metrics['faces_found']:,} of {metrics['n']:,} photos ({metrics['faces_found_rate']:.1%}); "
            "the others are scored as wrong"
        )
        lists = (("no_face", "no face"), ("several_faces", "several faces"), ("unreadable", "unreadable, left out"))
        for key, what in lists:
            paths = metrics.get(key) or []
            if paths:
                more = f", … {len(paths) - max_listed} more" if len(paths) > max_listed else ""
                lines.append(f"{what} ({len(paths)}): {', '.join(paths[:max_listed])}{more}")
    return "\n".join(lines)

"""Scoring a fitted pipeline on a split: accuracy, macro-F1, per-class report, confusion matrix."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from fer_features.datasets import EMOTIONS, EMOTIONS8


def evaluate(model, X: np.ndarray, labels: np.ndarray) -> dict:
    """Score a fitted pipeline on face crops.

    Parameters
    ----------
    model : fitted Pipeline
        Predicts emotion names from ``(n, 48, 48)`` uint8 crops.
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
    labels : ndarray of shape (n_samples,), dtype str
        True emotion names.

    Returns
    -------
    dict
        ``accuracy`` and ``macro_f1`` (floats in 0..1), ``n`` (images), ``predict_seconds``
        (wall time of ``predict``, seconds), ``per_class`` (``{emotion: {precision, recall,
        f1, support}}``), ``confusion_matrix`` (list of lists, rows true, columns predicted,
        in :data:`EMOTIONS` order, or :data:`EMOTIONS8` when contempt is among the true or
        predicted labels or the model's classes) and ``labels`` (that order).
    """
    start = time.perf_counter()
    predicted = np.asarray(model.predict(X))
    seconds = time.perf_counter() - start
    seen = set(np.unique(labels).tolist()) | set(np.unique(predicted).tolist()) | set(map(str, getattr(model, "classes_", ())))
    order = list(EMOTIONS8 if "contempt" in seen else EMOTIONS)
    p, r, f, s = precision_recall_fscore_support(labels, predicted, labels=order, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=order, average="macro", zero_division=0)),
        "predict_seconds": round(seconds, 6),
        "per_class": {
            e: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, e in enumerate(order)
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=order).tolist(),
        "labels": order,
    }


def evaluate_split(model, dataset, split: str = "PrivateTest", *, plot=None, name: str = "model") -> dict:
    """Score a fitted model on one usage split of a data set (``fer evaluate``).

    Parameters
    ----------
    model : fitted Pipeline
    dataset : FERDataset
    split : {'Training', 'PublicTest', 'PrivateTest'}, default='PrivateTest'
    plot : str or Path, optional
        Also save the confusion matrix here as PNG.
    name : str, default='model'
        The model's name, in the plot's title.

    Returns
    -------
    dict
        ``split``, ``data_fingerprint``, the entries of :func:`evaluate`, and ``plot`` (its
        path, or None).

    Raises
    ------
    DataError
        If the split has no images.
    """
    from fer_features.datasets import DataError

    X, y = dataset.split(split)
    if len(X) == 0:
        raise DataError(f"{dataset.source}: has no {split} images")
    metrics = evaluate(model, X, y)
    if plot is not None:
        plot_confusion_matrix(metrics["confusion_matrix"], plot, title=f"{name}, {split} (acc {metrics['accuracy']:.3f})")
    return {"split": split, "data_fingerprint": dataset.fingerprint, **metrics, "plot": str(plot) if plot is not None else None}


def plot_confusion_matrix(cm, path: str | Path, *, title: str = "") -> Path:
    """Save a row-normalised confusion matrix as PNG (matplotlib).

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
    from sklearn.metrics import ConfusionMatrixDisplay

    from fer_features.plotting import pyplot, save_figure

    plt = pyplot()

    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    ConfusionMatrixDisplay(norm, display_labels=list(EMOTIONS8[: len(cm)])).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=True, xticks_rotation=45
    )
    ax.set_title(title or "Confusion matrix (rows: true class, normalised)")
    fig.tight_layout()
    return save_figure(fig, path)


def format_report(metrics: dict) -> str:
    """Per-class precision/recall/F1 as plain text, like sklearn's classification report."""
    lines = [f"{'':>10} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for e, m in metrics["per_class"].items():
        lines.append(f"{e:>10} {m['precision']:9.3f} {m['recall']:9.3f} {m['f1']:9.3f} {m['support']:8d}")
    lines.append(f"{'accuracy':>10} {'':>9} {'':>9} {metrics['accuracy']:9.3f} {metrics['n']:8d}")
    lines.append(f"{'macro-F1':>10} {'':>9} {'':>9} {metrics['macro_f1']:9.3f} {metrics['n']:8d}")
    return "\n".join(lines)

"""The one way figures are made and saved: matplotlib's Agg backend (no display), written atomically."""

from __future__ import annotations

import io
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, which needs no display (matplotlib: the ``train`` extra)."""
    from fer_features.extras import import_optional

    matplotlib = import_optional("matplotlib", "plotting (confusion matrices, fer data inspect)")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: float | None = None) -> Path:
    """Save ``fig`` as PNG at ``path`` (atomically, folders created) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
    dpi : float, optional
        Resolution; default the figure's own.

    Returns
    -------
    Path
    """
    return save_png(figure_png(fig, dpi=dpi), path)


def save_png(png: bytes, path: str | Path) -> Path:
    """Write PNG bytes (:func:`figure_png`, :func:`confusion_matrix_png`) to ``path``, atomically, folders created."""
    from fer_features.persist.outputs import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return path


def figure_png(fig, *, dpi: float | None = None) -> bytes:
    """``fig`` as PNG bytes, and closed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : float, optional
        Resolution; default the figure's own.

    Returns
    -------
    bytes
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **({"dpi": dpi} if dpi else {}))
    pyplot().close(fig)
    return buffer.getvalue()


def confusion_matrix_png(cm, *, title: str = "") -> bytes:
    """A row-normalised confusion matrix drawn as PNG (what ``fer train`` and ``fer evaluate --plot`` write).

    Parameters
    ----------
    cm : array-like of shape (7, 7) or (8, 8), dtype int
        Counts, rows true class, columns predicted, in :data:`~fer_features.config.EMOTIONS`
        order (8x8: :data:`~fer_features.config.EMOTIONS8`, FERPlus with contempt).
    title : str, optional

    Returns
    -------
    bytes
    """
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    from fer_features.config import EMOTIONS8

    plt = pyplot()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    ConfusionMatrixDisplay(norm, display_labels=list(EMOTIONS8[: len(cm)])).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=True, xticks_rotation=45
    )
    ax.set_title(title or "Confusion matrix (rows: true class, normalised)")
    fig.tight_layout()
    return figure_png(fig)

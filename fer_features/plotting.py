"""The one way figures are made and saved: matplotlib's Agg backend (no display), written atomically."""

from __future__ import annotations

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
    from fer_features.persist.outputs import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **({"dpi": dpi} if dpi else {}))
    pyplot().close(fig)
    return path

"""FERPlus: FER2013's faces with the labels of ten annotators per image.

FERPlus [1]_ re-labels every FER2013 image by crowd vote. Its file ``fer2013new.csv`` has one
row per row of the challenge file ``fer2013.csv`` (same order) and the columns ``Usage, Image
name, neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF``: the
number of the ten annotators who chose each emotion, "unknown", or "not a face". The pixels
come from ``fer2013.csv``; this module joins the two into a :class:`FERDataset`.

References
----------
.. [1] Barsoum, E., Zhang, C., Canton Ferrer, C. and Zhang, Z. "Training deep networks for
       facial expression recognition with crowd-sourced label distribution." ICMI 2016.
       :doi:`10.1145/2993148.2993165`
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_features.config import EMOTIONS, EMOTIONS8, LABEL_MODES
from fer_features.data.fer2013 import DataError, FERDataset, _fingerprint, is_csv_path, load_fer2013

#: Vote columns of ``fer2013new.csv``, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
#: FERPlus column of each class of :data:`~fer_features.config.EMOTIONS8`, in that order.
_COLUMN_OF_CLASS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
    "sad": "sadness", "surprise": "surprise", "neutral": "neutral", "contempt": "contempt",
}

FERPLUS_FILE = "fer2013new.csv"


#: Names of the pixel file looked for beside ``fer2013new.csv``, in order.
PIXEL_FILES = ("fer2013.csv", "fer2013.csv.gz", "fer2013.csv.bz2", "fer2013.csv.xz", "fer2013.csv.zip")


def pixel_file_beside(folder: str | os.PathLike) -> Path | None:
    """The FER2013 challenge CSV in ``folder`` (first of :data:`PIXEL_FILES` that exists), or None."""
    for name in PIXEL_FILES:
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


def is_ferplus_source(path: str | os.PathLike) -> bool:
    """True if ``path`` is a FERPlus vote CSV (a header with ``Image name``) or a folder holding
    ``fer2013new.csv``, whether or not the pixel file is beside it."""
    path = Path(path)
    if path.is_dir():
        return (path / FERPLUS_FILE).is_file()
    return is_csv_path(path) and _has_ferplus_header(path)


def find_ferplus_pair(path: str | os.PathLike) -> tuple[Path, Path] | None:
    """``(fer2013new.csv, pixel CSV)`` if ``path`` is a FERPlus source (:func:`is_ferplus_source`)
    with ``fer2013.csv`` or ``fer2013.csv.gz`` (:data:`PIXEL_FILES`) beside it; else None."""
    path = Path(path)
    if not is_ferplus_source(path):
        return None
    new = path / FERPLUS_FILE if path.is_dir() else path
    old = pixel_file_beside(new.parent)
    return (new, old) if old is not None else None


def _has_ferplus_header(path: Path) -> bool:
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0).columns
    except Exception:  # noqa: BLE001 - any unreadable file is simply not FERPlus
        return False
    return "Image name" in header


def load_ferplus(
    path: str | os.PathLike,
    *,
    label_mode: str = "majority",
    classes: int = 7,
    fer2013_csv: str | os.PathLike | None = None,
    skip_bad: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> FERDataset:
    """Load FERPlus: FER2013's pixels with the FERPlus annotators' labels.

    Parameters
    ----------
    path : str or path-like
        ``fer2013new.csv``, or the folder holding it and ``fer2013.csv`` (or ``fer2013.csv.gz``).
    label_mode : {'majority', 'probability'}, default='majority'
        ``'majority'``: the FERPlus paper's majority vote, one hard label per image; images whose
        top vote is not a strict majority, or goes to unknown/NF (or to contempt with
        ``classes=7``), are dropped. ``'probability'``: the vote distribution over the classes
        in ``FERDataset.soft`` and its argmax in ``y``; images with no vote for any class, or
        whose top vote is unknown/NF (or contempt with ``classes=7``), are dropped.
    classes : {7, 8}, default=7
        7: FER2013's classes (contempt votes ignored); 8: adds ``contempt`` as label 7
        (:data:`~fer_features.config.EMOTIONS8`).
    fer2013_csv : str or path-like, optional
        The challenge file with the pixels; default the first of :data:`PIXEL_FILES`
        (``fer2013.csv``, ``fer2013.csv.gz``, ...) beside ``fer2013new.csv``.
    skip_bad : bool, default=False
        Passed to :func:`~fer_features.data.fer2013.load_fer2013` for the pixel file; bad FERPlus
        vote rows are an error either way.
    cache, cache_dir
        As for :func:`~fer_features.data.fer2013.load_fer2013` (the decoded pixels are cached).

    Returns
    -------
    FERDataset
        ``X`` uint8 ``(n, 48, 48)``, ``y`` int64 indices into ``classes`` (``EMOTIONS`` or
        ``EMOTIONS8``), ``usage`` from FERPlus's ``Usage`` column, ``names`` ``"line N"`` of
        ``fer2013.csv``; ``soft`` float32 ``(n, 7 or 8)`` in ``'probability'`` mode.

    Raises
    ------
    FileNotFoundError
        If either CSV is missing.
    ValueError
        For an unknown ``label_mode`` or ``classes``.
    DataError
        If a column is missing, a vote is not a non-negative integer, or the two files do not
        have the same number of rows or disagree on a row's Usage.

    Notes
    -----
    As in the FERPlus reference code (``src/ferplus.py`` of microsoft/FERPlus), a single vote
    for an emotion is taken for annotator noise and removed before the vote is counted, in both
    modes. Rows with an empty ``Image name`` (faces FERPlus removed) are dropped.
    """

    if label_mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {label_mode!r}; expected one of {', '.join(LABEL_MODES)}")
    if classes not in (7, 8):
        raise ValueError(f"classes must be 7 or 8 (8 adds contempt), got {classes!r}")
    path = Path(path)
    new = path / FERPLUS_FILE if path.is_dir() else path
    if not new.is_file():
        raise FileNotFoundError(f"{new}: no such file (FERPlus needs its vote file {FERPLUS_FILE})")
    old = Path(fer2013_csv) if fer2013_csv is not None else pixel_file_beside(new.parent)
    if old is None:
        raise FileNotFoundError(
            f"{new}: FERPlus has only votes; its pixels come from the FER2013 challenge CSV, which must lie "
            f"beside it: put fer2013.csv or fer2013.csv.gz in {new.parent}/"
        )
    if not old.is_file():
        raise FileNotFoundError(f"{old}: no such file (the FER2013 challenge CSV with the pixels for {new.name})")
    votes_df, votes = _read_votes(new)
    pixels = load_fer2013(old, skip_bad=skip_bad, cache=cache, cache_dir=cache_dir)
    row_of = _rows_of(pixels, votes_df, new)

    names = tuple(EMOTIONS if classes == 7 else EMOTIONS8)
    soft, keep = ferplus_labels(votes[row_of], label_mode=label_mode, classes=classes)
    keep &= _kept_by_ferplus(votes_df)[row_of]
    X, usage = pixels.X[keep], pixels.usage[keep]
    y = soft[keep].argmax(axis=1).astype(np.int64)
    soft_kept = soft[keep] if label_mode == "probability" else None
    return FERDataset(
        X, y, usage, pixels.names[keep], str(new), _fingerprint(X, y, usage, soft_kept),
        pixels.skipped, names, soft_kept,
    )


def _read_votes(new: Path):
    """``fer2013new.csv`` as a DataFrame and its vote counts ``(n_rows, 10)`` float64, checked."""
    import pandas as pd

    try:
        votes_df = pd.read_csv(new, dtype={"Usage": str, "Image name": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{new}: not a readable CSV ({exc})") from None
    missing = [c for c in ("Usage", "Image name", *FERPLUS_COLUMNS) if c not in votes_df.columns]
    if missing:
        raise DataError(
            f"{new}: missing column(s) {', '.join(missing)}; a FERPlus CSV (fer2013new.csv) has Usage, Image name, "
            f"{', '.join(FERPLUS_COLUMNS)}"
        )
    votes = votes_df[list(FERPLUS_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(votes) & (votes >= 0) & (votes == np.round(votes)), axis=1))
    if len(bad):
        raise DataError(f"{new}: line {bad[0] + 2}: vote counts must be non-negative integers")
    return votes_df, votes


def _kept_by_ferplus(votes_df) -> np.ndarray:
    """Per row of ``fer2013new.csv``, whether FERPlus kept the face: bool ``(n_rows,)``, False where ``Image name`` is empty."""
    return votes_df["Image name"].fillna("").str.strip().to_numpy(str) != ""


def _rows_of(pixels: FERDataset, votes_df, new: Path, *, whole: bool = True) -> np.ndarray:
    """The 0-based row of ``fer2013new.csv`` of each face of ``pixels`` (loaded from the challenge
    CSV, whose names are ``"line N"``), checked: the same number of rows (``whole``; else none
    past the vote file's end) and the same Usage."""
    try:
        row_of = np.array([int(n.split()[1]) - 2 for n in pixels.names], dtype=np.int64)  # "line N" -> 0-based row
    except (IndexError, ValueError):
        raise DataError(
            f"{pixels.source}: its faces are not named by line of the FER2013 challenge CSV; FERPlus votes pair "
            "with fer2013.csv (or .csv.gz) rows only"
        ) from None
    n_rows = len(row_of) + len(pixels.skipped) if whole else int(row_of.max(initial=-1)) + 1  # skipped rows count
    if (n_rows != len(votes_df)) if whole else (n_rows > len(votes_df)):
        raise DataError(
            f"{new}: {len(votes_df)} rows, but {pixels.source} has {n_rows}: the FERPlus rows must correspond one to one, "
            "in order"
        )
    ferplus_usage = votes_df["Usage"].to_numpy(str)[row_of]
    mismatch = np.flatnonzero(ferplus_usage != pixels.usage)
    if len(mismatch):
        i = mismatch[0]
        raise DataError(
            f"{new}: line {row_of[i] + 2}: Usage {str(ferplus_usage[i])!r} but {pixels.source} says "
            f"{str(pixels.usage[i])!r}; are these files a pair?"
        )
    return row_of


def ferplus_soft_targets(
    data: FERDataset, votes: str | os.PathLike, *, weight: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """FER2013's one-hot labels mixed with the FERPlus vote distributions of the same faces.

    Parameters
    ----------
    data : FERDataset
        FER2013 loaded from the challenge CSV (:func:`~fer_features.data.fer2013.load_fer2013`
        of ``fer2013.csv`` or ``fer2013.csv.gz``), or a subset of it (e.g. its Training faces).
    votes : str or path-like
        ``fer2013new.csv``, whose row i holds the votes for row i of the challenge CSV.
    weight : float, default=0.5
        Share of the vote distribution in each target, in [0, 1].

    Returns
    -------
    targets : ndarray of shape (n_samples, 7), dtype float32
        ``(1 - weight) * one_hot(data.y) + weight * votes``, rows summing to 1, in
        :data:`~fer_features.config.EMOTIONS` order: the FERPlus paper's probability ("PLD")
        targets [1]_ mixed with FER2013's labels. Faces without a vote distribution keep
        their one-hot label.
    has_votes : ndarray of shape (n_samples,), dtype bool
        Faces with a distribution: not dropped by FERPlus (empty ``Image name``) and with
        their top vote on one of the 7 classes after the single-vote noise is removed
        (``label_mode='probability'`` of :func:`ferplus_labels`; contempt votes ignored).

    Raises
    ------
    ValueError
        For a weight outside [0, 1] or a data set of other classes than FER2013's 7.
    DataError
        If ``data``'s faces are not rows of the challenge CSV, or the two files disagree on
        the number of rows or on a row's Usage.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight is a share in [0, 1], got {weight!r}")
    if tuple(data.classes) != tuple(EMOTIONS):
        raise ValueError(f"FERPlus soft targets are for FER2013's 7 classes {EMOTIONS}, got {tuple(data.classes)}")
    new = Path(votes)
    if not new.is_file():
        raise FileNotFoundError(f"{new}: no such file (the FERPlus vote file {FERPLUS_FILE})")
    votes_df, counts = _read_votes(new)
    row_of = _rows_of(data, votes_df, new, whole=False)
    soft, has_votes = ferplus_labels(counts[row_of], label_mode="probability", classes=7)
    has_votes &= _kept_by_ferplus(votes_df)[row_of]
    one_hot = np.eye(len(EMOTIONS), dtype=np.float32)[np.asarray(data.y)]
    targets = np.where(has_votes[:, None], (1.0 - weight) * one_hot + weight * soft, one_hot)
    return targets.astype(np.float32), has_votes


def ferplus_labels(votes: np.ndarray, *, label_mode: str = "majority", classes: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Labels from FERPlus vote counts.

    Parameters
    ----------
    votes : array-like of shape (n_samples, 10)
        Counts in :data:`FERPLUS_COLUMNS` order (neutral … contempt, unknown, NF).
    label_mode : {'majority', 'probability'}, default='majority'
    classes : {7, 8}, default=7

    Returns
    -------
    soft : ndarray of shape (n_samples, classes), dtype float32
        ``'majority'``: one-hot of the winning class; ``'probability'``: the votes for the
        classes, normalised to sum to 1. In :data:`~fer_features.config.EMOTIONS` (or
        ``EMOTIONS8``) order. Rows not kept are zero.
    keep : ndarray of shape (n_samples,), dtype bool
        Whether the image has a label under that mode (see :func:`load_ferplus`).
    """
    votes = np.asarray(votes, np.float64).copy()
    votes[votes <= 1] = 0  # a single vote is annotator noise (FERPlus reference code)
    order = [FERPLUS_COLUMNS.index(_COLUMN_OF_CLASS[c]) for c in (EMOTIONS if classes == 7 else EMOTIONS8)]
    total = votes.sum(axis=1)  # every column: unknown and NF votes count against a majority
    top = votes.argmax(axis=1)
    top_is_class = np.isin(top, order)
    if label_mode == "majority":
        keep = top_is_class & (votes.max(axis=1) > 0.5 * total)
        soft = np.zeros((len(votes), len(order)), np.float32)
        rows = np.flatnonzero(keep)
        soft[rows, [order.index(t) for t in top[rows]]] = 1.0
        return soft, keep
    class_votes = votes[:, order]
    sums = class_votes.sum(axis=1)
    keep = top_is_class & (sums > 0)
    soft = np.divide(class_votes, sums[:, None], out=np.zeros_like(class_votes), where=sums[:, None] > 0)
    return soft.astype(np.float32), keep

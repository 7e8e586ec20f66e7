"""One entry point for every data source: FER2013 (zip, folder, CSV), FERPlus, folders of photos.

:func:`load_dataset` tells the kind from the path (or takes ``format``) and returns a
:class:`~fer_features.data.fer2013.FERDataset`: aligned grey crops ``(n, 48, 48)`` uint8, labels and
usage splits, whatever the source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_features.config import DATA_FORMATS, USAGES
from fer_features.data.fer2013 import DataError, FERDataset, load_fer2013
from fer_features.events import EventCallback, no_events


def detect_format(path: str | os.PathLike) -> str:
    """The format of a data path.

    Rules, in order: a CSV (also compressed: ``.csv.gz``, ...) whose header has ``Image name`` is
    ``'ferplus'`` (any other CSV ``'fer2013'``); a ``.zip`` is ``'fer2013'``; a folder holding
    ``fer2013new.csv`` is ``'ferplus'``; a folder whose first image is not 48x48 is
    ``'photos'``; any other folder ``'fer2013'``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    from fer_features.data.ferplus import is_ferplus_source
    from fer_features.data.photos import is_photo_folder

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return "ferplus" if is_ferplus_source(path) else "fer2013"
    if is_ferplus_source(path):
        return "ferplus"
    return "photos" if is_photo_folder(path) else "fer2013"


def load_dataset(
    path: str | os.PathLike,
    format: str = "auto",
    *,
    skip_bad: bool = False,
    label_mode: str = "majority",
    classes: int = 7,
    seed: int = 0,
    n_jobs: int | None = -1,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> FERDataset:
    """Load any supported data source as a :class:`~fer_features.data.fer2013.FERDataset`.

    Parameters
    ----------
    path : str or path-like
        FER2013 zip, folder or ``fer2013.csv`` (or ``fer2013.csv.gz``, ``.bz2``, ``.xz``,
        ``.zip``); FERPlus ``fer2013new.csv`` (with ``fer2013.csv`` or ``fer2013.csv.gz`` beside
        it) or their folder; a folder of labelled photos.
    format : {'auto', 'fer2013', 'ferplus', 'photos'}, default='auto'
        ``'auto'`` uses :func:`detect_format`.
    skip_bad : bool, default=False
        FER2013/FERPlus: leave out bad files instead of raising (see
        :func:`~fer_features.data.fer2013.load_fer2013`). Photo folders never stop on a bad photo.
    label_mode : {'majority', 'probability'}, default='majority'
    classes : {7, 8}, default=7
        FERPlus only, see :func:`~fer_features.data.ferplus.load_ferplus`.
    seed : int, default=0
        Photo folders without split folders: seed of the stratified split.
    n_jobs : int, default=-1
        Photo folders: joblib workers for face detection.
    cache, cache_dir
        As for :func:`~fer_features.data.fer2013.load_fer2013`.

    Returns
    -------
    FERDataset
        For photo folders a :class:`~fer_features.data.photos.PhotoFolderDataset`, which also
        lists the photos left out.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unknown ``format`` (:class:`DataError` is a ``ValueError`` too).
    DataError
        If the source is not in the layout of its format or a file in it is bad.
    """
    if format not in DATA_FORMATS:
        raise ValueError(f"unknown data format {format!r}; expected one of {', '.join(DATA_FORMATS)}")
    if format == "auto":
        format = detect_format(path)
    if format == "fer2013":
        return load_fer2013(path, skip_bad=skip_bad, cache=cache, cache_dir=cache_dir)
    if format == "ferplus":
        from fer_features.data.ferplus import load_ferplus

        return load_ferplus(
            path, label_mode=label_mode, classes=classes, skip_bad=skip_bad, cache=cache, cache_dir=cache_dir
        )
    from fer_features.data.photos import load_photo_folder

    if not Path(path).is_dir():
        raise DataError(f"{path}: the photos format needs a folder of <emotion>/<photo> or <split>/<emotion>/<photo>")
    return load_photo_folder(path, seed=seed, n_jobs=n_jobs, cache=cache, cache_dir=cache_dir)


def limit_dataset(data: FERDataset, limit: int | None, seed: int = 0) -> FERDataset:
    """At most ``limit`` images per usage split, stratified by emotion, seeded.

    Parameters
    ----------
    data : FERDataset
    limit : int or None
        Images kept per split; ``0`` or ``None`` keeps everything (and returns ``data`` itself).
    seed : int, default=0
        The same seed picks the same images in every process.

    Returns
    -------
    FERDataset
    """
    if not limit:
        return data
    from sklearn.model_selection import train_test_split

    keep = []
    for usage in USAGES:
        idx = np.flatnonzero(data.usage == usage)
        if len(idx) <= limit:
            keep.append(idx)
            continue
        try:
            chosen, _ = train_test_split(idx, train_size=limit, stratify=data.y[idx], random_state=seed)
        except ValueError:  # a class too rare to stratify: plain random sample
            chosen = np.random.default_rng(seed).choice(idx, size=limit, replace=False)
        keep.append(chosen)
    return data.subset(np.sort(np.concatenate(keep)))


def load_data(
    data: str | os.PathLike | FERDataset,
    data_format: str = "auto",
    *,
    on_event: EventCallback | None = None,
    limit: int | None = None,
    **options,
) -> FERDataset:
    """A data set as given, or loaded from a path with :func:`fer_features.data.sources.load_dataset`.

    Parameters
    ----------
    data : path-like or FERDataset
    data_format : {'auto', 'fer2013', 'ferplus', 'photos'}, default='auto'
    on_event : callable, optional
        Gets ``("load-start", {"path"})`` and ``("loaded", {"dataset"})``.
    limit : int, optional
        At most this many images per usage split (:func:`limit_dataset`, seeded with
        ``options['seed']``); ``0`` or None keeps everything.
    **options
        ``skip_bad``, ``label_mode``, ``classes``, ``seed``, ``n_jobs`` of ``load_dataset``.

    Returns
    -------
    FERDataset

    Raises
    ------
    DataError
        For a missing, unreadable or malformed source (the message names it).
    """
    if isinstance(data, FERDataset):
        return limit_dataset(data, limit, options.get("seed", 0))
    emit = on_event or no_events
    emit("load-start", {"path": str(data)})
    try:
        dataset = load_dataset(data, data_format, **options)
    except DataError:
        raise
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(str(exc)) from exc
    emit("loaded", {"dataset": dataset})
    return limit_dataset(dataset, limit, options.get("seed", 0))

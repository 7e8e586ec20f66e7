"""Cross-validation on Training: stratified k folds of a feature pipeline (``fer cv``)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from fer_features.config import (
    DEFAULT_CLASSIFIER,
    DEFAULT_FEATURES,
)
from fer_features.data.fer2013 import DataError, FERDataset
from fer_features.data.sources import load_data
from fer_features.events import EventCallback, no_events
from fer_features.training.settings import TrainPlan, TrainSettings


def cv_summary(scores: dict) -> dict:
    """Mean and standard deviation of :func:`sklearn.model_selection.cross_validate` scores.

    Parameters
    ----------
    scores : dict
        With ``test_accuracy`` and ``test_macro_f1`` arrays (one value per fold).

    Returns
    -------
    dict
        ``accuracy_mean``, ``accuracy_std``, ``macro_f1_mean``, ``macro_f1_std`` (floats).
    """
    return {
        "accuracy_mean": float(np.mean(scores["test_accuracy"])),
        "accuracy_std": float(np.std(scores["test_accuracy"])),
        "macro_f1_mean": float(np.mean(scores["test_macro_f1"])),
        "macro_f1_std": float(np.std(scores["test_macro_f1"])),
    }


#: Scorers of every cross-validation here: accuracy and macro-F1.
CV_SCORING = {"accuracy": "accuracy", "macro_f1": "f1_macro"}


def cross_validate_pipeline(
    data: str | os.PathLike | FERDataset,
    features: str = DEFAULT_FEATURES,
    clf: str = DEFAULT_CLASSIFIER,
    *,
    settings: TrainSettings | None = None,
    plan: TrainPlan | None = None,
    folds: int = 5,
    data_format: str = "auto",
    load_options: dict | None = None,
    on_event: EventCallback | None = None,
    **options,
) -> dict:
    """Stratified k-fold cross-validation on Training (PublicTest and PrivateTest untouched).

    The folds are scikit-learn's :class:`~sklearn.model_selection.StratifiedKFold`, shuffled with
    ``seed``; with ``augment`` or ``balance='oversample'`` each training fold is resampled
    (:class:`~fer_features.data.resampling.TrainingResampler`), its held-out fold is not.

    Parameters
    ----------
    data : path-like or FERDataset
    features : str, default='hog+lbp+landmarks'
    clf : str, default='svm'
        A feature-pipeline head (not ``cnn``).
    settings : TrainSettings, optional
        All options at once, in place of ``features``, ``clf`` and ``**options``.
    plan : TrainPlan, optional
        Options checked already (:meth:`TrainSettings.plan_cv`), in place of ``settings``.
    folds : int, default=5
    data_format, load_options, on_event
        As in :func:`train` (events ``load-start``, ``loaded``, ``cv-start``).
    **options
        :class:`TrainSettings` fields: ``pca``, ``class_weight``, ``balance``, ``augment``,
        ``n_jobs``, ``seed``, ``limit``, ``feature_params``.

    Returns
    -------
    dict
        ``features``, ``classifier``, ``folds``, ``seed``, ``n_images``, ``data_fingerprint``,
        the :func:`cv_summary` and ``per_fold`` (``fold``, ``accuracy``, ``macro_f1``,
        ``fit_seconds``, ``score_seconds``).

    Raises
    ------
    ValueError, FileNotFoundError
        For bad options, before any data is read.
    DataError
        For unreadable data, or fewer Training images than folds.
    """
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from fer_features.training.pipelines import cap_pca
    from fer_features.training.small_data import check_cv_folds, fit_to_class_counts

    if plan is None:
        plan = (settings or TrainSettings(features=features, clf=clf, **options)).plan_cv()
    settings, pipe = plan.settings, plan.pipeline
    features, clf = settings.features, settings.clf
    emit = on_event or no_events
    load_options = {"seed": settings.seed, "n_jobs": settings.n_jobs, **(load_options or {})}
    dataset = load_data(data, data_format, on_event=emit, limit=settings.limit, **load_options)
    X, y = dataset.split("Training")
    if len(X) < folds:
        raise DataError(f"{dataset.source if isinstance(data, FERDataset) else data}: {len(X)} Training images cannot make {folds} folds")
    notes = check_cv_folds(y, folds, source=str(dataset.source))
    for note in notes + fit_to_class_counts(pipe, y, head=settings.clf, source=str(dataset.source), folds=folds):
        emit("message", {"text": f"warning: {note}"})
    cap_pca(pipe, len(X) * (folds - 1) // folds)  # the smallest training fold
    if settings.augment or settings.balance == "oversample":
        from fer_features.data.resampling import TrainingResampler

        pipe = TrainingResampler(pipe, augment_flip=settings.augment, balance=settings.balance, seed=settings.seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    emit("cv-start", {"text": f"{folds}-fold cross-validation of {features} → {clf} on {len(X):,} Training faces"})
    with warnings.catch_warnings():  # a class of fewer faces than folds: said above, in one line
        warnings.filterwarnings("ignore", message="The least populated class in y has only")
        scores = cross_validate(pipe, X, y, cv=splitter, scoring=CV_SCORING)
    per_fold = [
        {
            "fold": i + 1,
            "accuracy": float(scores["test_accuracy"][i]),
            "macro_f1": float(scores["test_macro_f1"][i]),
            "fit_seconds": round(float(scores["fit_time"][i]), 2),
            "score_seconds": round(float(scores["score_time"][i]), 2),
        }
        for i in range(folds)
    ]
    return {
        "features": features,
        "classifier": clf,
        "folds": folds,
        "seed": settings.seed,
        "n_images": int(len(X)),
        "data_fingerprint": dataset.fingerprint,
        **cv_summary(scores),
        "per_fold": per_fold,
    }

"""Training on classes of a few faces: fit the heads' internal cross-validation to them, or refuse.

Several heads split their Training data again inside ``fit``: the SVMs calibrate their
probabilities on 3-fold cross-validated decision values (scikit-learn's
:class:`~sklearn.calibration.CalibratedClassifierCV`), ``stacked-svm`` fits its fusion on 3-fold
out-of-fold decision values (:class:`~sklearn.ensemble.StackingClassifier`), and gradient
boosting and the MLP hold out 10% for early stopping. Those splits are stratified: a class of
fewer faces than folds makes scikit-learn raise deep inside ``fit``. A user's folder with two
photos of one emotion, or ``--limit 100`` on FER2013 (2 faces of disgust), meets that.

:func:`fit_to_class_counts` looks at the class counts before any work and, per step, either uses
fewer folds (at least 2), turns early stopping off, or raises :class:`SmallClassError` in one
line that names the class, its count and what is needed. :func:`check_cv_folds` does the same
for ``fer cv --folds``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from fer_features.data.fer2013 import DataError


class SmallClassError(DataError):
    """A class has too few Training faces for a step of the pipeline; the message says which and what is needed."""


def smallest_class(y) -> tuple[str, int]:
    """The least frequent label of ``y`` and its count.

    Parameters
    ----------
    y : array-like of shape (n_samples,)

    Returns
    -------
    label : str
    count : int
        0 for an empty ``y``.
    """
    counts = Counter(np.asarray(y).tolist())
    if not counts:
        return "", 0
    label, count = min(counts.items(), key=lambda kv: (kv[1], str(kv[0])))
    return str(label), int(count)


def check_cv_folds(y, folds: int, *, source: str = "Training") -> list[str]:
    """Refuse a k-fold cross-validation that would leave a class out of a training fold.

    A class of ``c`` faces is in every training fold when ``c >= 2``; with ``c < folds`` some
    held-out folds lack it, which is allowed (their scores count the classes they have).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels that are split into folds.
    folds : int
    source : str, default='Training'
        Named in the message (the data set).

    Returns
    -------
    list of str
        A warning when a class has fewer faces than ``folds``.

    Raises
    ------
    SmallClassError
        If a class has a single face.
    """
    label, count = smallest_class(y)
    if count < 2:
        raise SmallClassError(
            f"{source}: class {label!r} has {_faces(count)} in Training; cross-validation needs at least 2 per class "
            f"(one to hold out, one to train on): add faces to {label!r}"
        )
    if count < folds:
        return [f"class {label!r} has {_faces(count)} in Training: {folds - count} of the {folds} held-out folds have none of it"]
    return []


def fit_to_class_counts(pipe, y, *, head: str | None = None, source: str = "Training", folds: int | None = None) -> list[str]:
    """Fit the internal splits of ``pipe``'s steps to its smallest class, in place.

    Parameters
    ----------
    pipe : estimator
        An unfitted pipeline (or head) from :func:`fer_features.training.pipelines.build_pipeline`.
    y : array-like of shape (n_samples,)
        The Training labels it will be fitted on.
    head : str, optional
        The head's registered name (``'svm'``), named in messages.
    source : str, default='Training'
        Named in messages (the data set).
    folds : int, optional
        The pipeline is fitted inside a ``folds``-fold cross-validation: its training folds hold
        about ``(folds - 1) / folds`` of each class (:func:`check_cv_folds` first).

    Returns
    -------
    list of str
        One warning per change made (e.g. a calibration on 2 folds instead of 3).

    Raises
    ------
    SmallClassError
        If a step cannot work on the smallest class at all (1 face for a calibration by
        cross-validation), before any work.
    """
    label, count = smallest_class(y)
    where = "Training"
    if folds:
        count -= math.ceil(count / folds)
        where = f"a training fold of {folds}-fold cross-validation"
    notes: list[str] = []
    y = np.asarray(y)
    what = f"the {head} head" if head else "the head"
    _fit(pipe, what, label, count, (len(y), len(np.unique(y))), (source, where), notes)
    return notes


def _fit(est, what: str, label: str, count: int, n: tuple[int, int], source: tuple[str, str], notes: list[str]) -> None:
    """Walk the estimator tree.

    ``count``: faces of ``label`` that ``est`` is fitted on; ``n``: faces and classes; ``source``:
    the data set and where in it (Training, or a training fold).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline

    from fer_features.heads.estimators import NystroemClassifier, can_hold_out

    if isinstance(est, Pipeline):
        for _, step in est.steps:
            _fit(step, what, label, count, n, source, notes)
    elif isinstance(est, (CalibratedClassifierCV, StackingClassifier)):
        job = "calibrates its probabilities" if isinstance(est, CalibratedClassifierCV) else "stacks out-of-fold decisions"
        folds = _fewer_folds(est.cv, f"{what} {job} by", label, count, source, notes)
        if folds is not None:
            est.set_params(cv=folds)
        k = est.cv if isinstance(est.cv, int) else 5
        inner = count - math.ceil(count / k)
        if isinstance(est, CalibratedClassifierCV):
            _fit(est.estimator, what, label, inner, n, source, notes)
        else:
            for _, member in est.estimators:
                _fit(member, what, label, inner, n, source, notes)
            _fit(est.final_estimator, what, label, count, n, source, notes)
    elif isinstance(est, VotingClassifier):
        for _, member in est.estimators:
            _fit(member, what, label, count, n, source, notes)
    elif isinstance(est, HistGradientBoostingClassifier):
        if est.early_stopping is True and not can_hold_out(count, n[0], n[1], est.validation_fraction):
            est.set_params(early_stopping=False)
            notes.append(f"class {label!r} has {_faces(count)} in {source[1]}: gradient boosting runs all "
                         f"{est.max_iter} iterations (no early-stopping split)")  # fmt: skip
    elif isinstance(est, NystroemClassifier) and est.linear == "svm" and count < 2:
        raise SmallClassError(
            f"{source[0]}: class {label!r} has {_faces(count)} in {source[1]}; the nystroem head with linear='svm' calibrates "
            f"its probabilities by cross-validation, which needs at least 2 per class: add faces to {label!r}, or use linear='logreg'"
        )


def _fewer_folds(cv, job: str, label: str, count: int, source: tuple[str, str], notes: list[str]) -> int | None:
    """The folds to use instead of ``cv`` for a class of ``count`` faces; None to keep ``cv``."""
    if cv is not None and not isinstance(cv, int):
        return None  # a splitter or an iterable of splits: the caller's choice
    k = 5 if cv is None else cv
    if count >= k:
        return None
    if count < 2:
        raise SmallClassError(
            f"{source[0]}: class {label!r} has {_faces(count)} in {source[1]}; {job} {k}-fold cross-validation, "
            f"which needs at least 2 per class: add faces to {label!r}, or use a head without inner folds (logreg, gbm, mlp)"
        )
    notes.append(f"class {label!r} has {_faces(count)} in {source[1]}: {job.removesuffix(' by')} by {count}-fold "
                 f"cross-validation instead of {k}-fold")  # fmt: skip
    return count


def _faces(count: int) -> str:
    return f"{count} face" if count == 1 else f"{count} faces"

"""Training-set helpers: mirrored (and shifted) copies of the faces, and oversampling of rare classes.

Both act on the Training split only, before fitting; validation and test images are never
augmented or repeated. :class:`TrainingResampler` applies them inside ``fit`` so that
cross-validation augments each training fold and leaves its held-out fold alone.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from fer_features.config import BALANCE_MODES


def shift_images(X: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Translate each image by whole pixels, filling the uncovered border from the edge (``np.pad`` ``'edge'``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, height, width)
    dx, dy : ndarray of shape (n_samples,), dtype int
        Shift to the right and down, in pixels.

    Returns
    -------
    ndarray of shape (n_samples, height, width), same dtype as ``X``
    """
    n, h, w = X.shape
    m = int(max(np.abs(dx).max(initial=0), np.abs(dy).max(initial=0)))
    if m == 0:
        return X.copy()
    padded = np.pad(X, ((0, 0), (m, m), (m, m)), mode="edge")
    out = np.empty_like(X)
    for i in range(n):
        out[i] = padded[i, m - dy[i] : m - dy[i] + h, m - dx[i] : m - dx[i] + w]
    return out


def augment(X: np.ndarray, y: np.ndarray, *, shift: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The images, their mirror images and, with ``shift``, one randomly shifted copy of each.

    Parameters
    ----------
    X : ndarray of shape (n_samples, height, width), dtype uint8
    y : ndarray of shape (n_samples,)
    shift : int, default=0
        Largest shift in pixels; > 0 adds a copy of each image (of the original or, at random,
        its mirror) moved by a random whole-pixel ``(dx, dy)`` in ``[-shift, shift]``.
    seed : int, default=0

    Returns
    -------
    X_aug : ndarray of shape (2 * n_samples, height, width), or (3 * n_samples, …) with ``shift``
        Originals first, then mirrors, then shifted copies.
    y_aug : ndarray
        Labels, repeated alike.

    Notes
    -----
    A horizontal flip keeps the expression (faces are roughly symmetric; FER2013 crops are not
    mirrored consistently), as in the CNN's own training augmentation.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    parts, labels = [X, X[:, :, ::-1]], [y, y]
    if shift > 0:
        rng = np.random.default_rng(seed)
        base = np.where(rng.random(len(X))[:, None, None] < 0.5, X, X[:, :, ::-1])
        dx, dy = rng.integers(-shift, shift + 1, size=(2, len(X)))
        parts.append(shift_images(base, dx, dy))
        labels.append(y)
    return np.ascontiguousarray(np.concatenate(parts)), np.concatenate(labels)


def oversample(X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Repeat images of the rarer classes at random (seeded) until every class has as many as the largest.

    Returns
    -------
    X_res : ndarray of shape (n_classes * max_count, height, width)
    y_res : ndarray of shape (n_classes * max_count,)
        Every original image once, then the drawn repeats.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    extra = [rng.choice(np.flatnonzero(y == c), size=counts.max() - n, replace=True) for c, n in zip(classes, counts)]
    index = np.concatenate([np.arange(len(y)), *extra]).astype(np.intp)
    return X[index], y[index]


def resample_training(X, y, *, augment_flip: bool = False, shift: int = 0, balance: str = "none", seed: int = 0):
    """:func:`augment` (if ``augment_flip``), then :func:`oversample` (if ``balance='oversample'``)."""
    if balance not in BALANCE_MODES:
        raise ValueError(f"unknown balance {balance!r}; expected one of {', '.join(BALANCE_MODES)}")
    if augment_flip:
        X, y = augment(X, y, shift=shift, seed=seed)
    if balance == "oversample":
        X, y = oversample(X, y, seed=seed)
    return X, y


class TrainingResampler(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on an augmented and/or oversampled copy of the training data.

    For cross-validation: each fold's training part is resampled, its held-out part is not.

    Parameters
    ----------
    estimator : estimator
        A classifier (e.g. a pipeline from :func:`~fer_features.training.pipelines.build_pipeline`).
    augment_flip : bool, default=False
    shift : int, default=0
    balance : {'none', 'weights', 'oversample'}, default='none'
        Only ``'oversample'`` acts here; ``'weights'`` belongs to the classifier's ``class_weight``.
    seed : int, default=0

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone.
    classes_ : ndarray
    """

    def __init__(self, estimator=None, *, augment_flip=False, shift=0, balance="none", seed=0):
        self.estimator = estimator
        self.augment_flip = augment_flip
        self.shift = shift
        self.balance = balance
        self.seed = seed

    def fit(self, X, y):
        Xr, yr = resample_training(
            np.asarray(X), np.asarray(y), augment_flip=self.augment_flip, shift=self.shift, balance=self.balance, seed=self.seed
        )
        self.estimator_ = clone(self.estimator).fit(Xr, yr)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

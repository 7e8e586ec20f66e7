"""Fast classifier heads: RBF-kernel accuracy at a fraction of the exact SVM's predict cost.

The exact RBF SVM (``svm``) compares every face with each of its ~25,000 support vectors; these
heads keep that kernel's shape with a fixed, small cost per face:

* :class:`NystroemClassifier`: the Nyström approximation [1]_ of the RBF kernel on
  ``n_components`` landmark faces sampled from Training, then a linear model on that map
  (``n_components`` kernel evaluations per face instead of one per support vector).

* :class:`MLPHead`: one hidden layer of ReLU units (scikit-learn's
  :class:`~sklearn.neural_network.MLPClassifier`, Adam, early stopping), with ``class_weight``.

References
----------
.. [1] Williams, C. K. I. and Seeger, M. "Using the Nyström method to speed up kernel machines."
       NIPS 2000.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data


_DTYPES = [np.float64, np.float32]


class _ProbabilisticHead(ClassifierMixin, BaseEstimator):
    """Shared by the heads: input checks, and ``predict`` as the most probable class."""

    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=_DTYPES)

    def predict(self, X):
        """Most probable class of each sample; ndarray of shape (n_samples,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class NystroemClassifier(_ProbabilisticHead):
    """RBF-kernel classifier through a Nyström feature map and a linear model.

    Parameters
    ----------
    n_components : int, default=2000
        Landmark samples of the kernel map (capped at the number of training samples).
    gamma : float or 'scale', default='scale'
        RBF width; ``'scale'`` is ``1 / (n_features * X.var())``, as :class:`~sklearn.svm.SVC` does.
    linear : {'logreg', 'svm'}, default='logreg'
        The linear model on the map: multinomial logistic regression, or a linear SVM whose
        probabilities come from temperature scaling on 3-fold decision values (as the ``svm``
        head's do).
    C : float, default=1.0
        Inverse regularisation of the linear model.
    class_weight : {None, 'balanced'}, default=None
    max_iter : int, default=1000
        Iterations of the linear model's solver.
    random_state : int, default=0
        Seeds the choice of landmarks.

    Attributes
    ----------
    feature_map_ : sklearn.kernel_approximation.Nystroem
    linear_ : classifier
        The fitted linear model.
    gamma_ : float
        The RBF width used.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Notes
    -----
    Predicting costs ``n_components x n_features`` multiply-adds per face for the map plus
    ``n_components x n_classes`` for the linear model, independent of the training-set size.
    """

    def __init__(self, *, n_components=2000, gamma="scale", linear="logreg", C=1.0, class_weight=None, max_iter=1000, random_state=0):
        self.n_components = n_components
        self.gamma = gamma
        self.linear = linear
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the map on ``n_components`` samples of ``X`` and the linear model on the mapped ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        from sklearn.kernel_approximation import Nystroem

        X, y = validate_data(self, X, y, dtype=_DTYPES)
        if self.linear not in ("logreg", "svm"):
            raise ValueError(f"linear must be 'logreg' or 'svm', got {self.linear!r}")
        if self.gamma == "scale":
            var = float(X.var())
            self.gamma_ = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        else:
            self.gamma_ = float(self.gamma)
        self.feature_map_ = Nystroem(
            kernel="rbf", gamma=self.gamma_, n_components=min(int(self.n_components), len(X)), random_state=self.random_state
        ).fit(X)
        self.linear_ = self._linear_model().fit(self.feature_map_.transform(X), y)
        self.classes_ = self.linear_.classes_
        return self

    def _linear_model(self):
        if self.linear == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state)
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        svc = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state)
        return CalibratedClassifierCV(svc, method="temperature", cv=3, ensemble=False)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``; rows sum to 1.
        """
        X = self._validated(X)  # before any fitted attribute is read: NotFittedError
        return self.linear_.predict_proba(self.feature_map_.transform(X))


class MLPHead(_ProbabilisticHead):
    """A small multilayer perceptron head, with ``class_weight`` like the other heads.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(512,)
    alpha : float, default=1e-3
        L2 penalty.
    max_iter : int, default=200
        Epochs at most; training stops when the accuracy on a 10% validation split of the
        training data has not improved for 10 epochs.
    class_weight : {None, 'balanced'}, default=None
        ``'balanced'`` weights each sample inversely to its class's frequency (as sample weights).
    random_state : int, default=0

    Attributes
    ----------
    mlp_ : sklearn.neural_network.MLPClassifier
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, *, hidden_layer_sizes=(512,), alpha=1e-3, max_iter=200, class_weight=None, random_state=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the network on ``X`` of shape (n_samples, n_features) and labels ``y``; returns ``self``."""
        from sklearn.neural_network import MLPClassifier
        from sklearn.utils.class_weight import compute_sample_weight

        X, y = validate_data(self, X, y, dtype=_DTYPES)
        weights = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        self.mlp_ = MLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            max_iter=self.max_iter,
            early_stopping=len(X) >= 50,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=self.random_state,
        ).fit(X, y, sample_weight=weights)
        self.classes_ = self.mlp_.classes_
        return self

    def predict_proba(self, X):
        """Class probabilities; ndarray of shape (n_samples, n_classes), rows summing to 1."""
        X = self._validated(X)
        return self.mlp_.predict_proba(X)

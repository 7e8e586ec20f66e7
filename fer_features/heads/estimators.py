"""Classifier heads beyond the exact SVM: fast ones, and a local one.

The exact RBF SVM (``svm``) compares every face with each of its ~25,000 support vectors; the
fast heads keep that kernel's shape with a fixed, small cost per face:

* :class:`NystroemClassifier`: the Nyström approximation [1]_ of the RBF kernel on
  ``n_components`` landmark faces sampled from Training, then a linear model on that map
  (``n_components`` kernel evaluations per face instead of one per support vector).

* :class:`MLPHead`: one hidden layer of ReLU units (scikit-learn's
  :class:`~sklearn.neural_network.MLPClassifier`, Adam, early stopping), with ``class_weight``.

The local head goes the other way, trading predict speed for accuracy:

* :class:`LocalSVMClassifier`: local learning, one SVM per face on its nearest Training faces
  (Bottou & Vapnik 1992; Ionescu et al. 2013 on FER2013).

And one for fitting time: :class:`BranchUnion`, the branches of the ``stacked-svm`` head
fitted side by side in threads.

References
----------
.. [1] Williams, C. K. I. and Seeger, M. "Using the Nyström method to speed up kernel machines."
       NIPS 2000.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import VotingClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

_DTYPES = [np.float64, np.float32]


def _rbf_gamma(X, gamma) -> float:
    """RBF width: ``gamma`` itself, or for ``'scale'`` ``1 / (n_features * X.var())`` as SVC computes it."""
    if gamma != "scale":
        return float(gamma)
    var = float(X.var())
    return 1.0 / (X.shape[1] * var) if var > 0 else 1.0


class _ProbabilisticHead(ClassifierMixin, BaseEstimator):
    """Shared by the heads: input checks, and ``predict`` as the most probable class."""

    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=_DTYPES)

    def predict(self, X):
        """Most probable class of each sample; ndarray of shape (n_samples,)."""
        proba = self.predict_proba(X)  # checks it is fitted first
        return self.classes_[np.argmax(proba, axis=1)]


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
    n_iter_ : int
        Iterations of the logistic regression's solver (0 for the calibrated linear SVM).

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
        self.gamma_ = _rbf_gamma(X, self.gamma)
        self.feature_map_ = Nystroem(
            kernel="rbf", gamma=self.gamma_, n_components=min(int(self.n_components), len(X)), random_state=self.random_state
        ).fit(X)
        self.linear_ = self._linear_model(y).fit(self.feature_map_.transform(X), y)
        self.classes_ = self.linear_.classes_
        self.n_iter_ = int(np.max(getattr(self.linear_, "n_iter_", 0)))  # the linear model's solver iterations
        return self

    def _linear_model(self, y):
        if self.linear == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state)
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        svc = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state)
        folds = min(3, max(2, int(np.unique(y, return_counts=True)[1].min())))  # a class of 2 faces: 2 folds
        return CalibratedClassifierCV(svc, method="temperature", cv=folds, ensemble=False)

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


def can_hold_out(smallest: int, n: int, n_classes: int, fraction: float) -> bool:
    """Whether scikit-learn can hold out a stratified ``fraction`` of ``n`` faces (early stopping).

    Its ``train_test_split`` needs 2 faces of every class (``smallest``: the smallest class's
    count) and each part, the held-out one rounded up, at least one face per class.
    """
    held = int(np.ceil(fraction * n))
    return bool(smallest >= 2 and held >= n_classes and n - held >= n_classes)


def _can_hold_out(y, fraction: float) -> bool:
    """:func:`can_hold_out` for the labels ``y``."""
    classes, counts = np.unique(y, return_counts=True)
    return can_hold_out(int(counts.min()), len(y), len(classes), fraction)


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
    n_iter_ : int
        Epochs run (early stopping may end it before ``max_iter``).
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
        check_classification_targets(y)
        if len(np.unique(y)) < 2:
            raise ValueError("MLPHead needs at least 2 classes to learn from; y has 1 class")
        weights = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        self.mlp_ = MLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            max_iter=self.max_iter,
            early_stopping=len(X) >= 50 and _can_hold_out(y, 0.1),
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=self.random_state,
        ).fit(X, y, sample_weight=weights)
        self.classes_ = self.mlp_.classes_
        self.n_iter_ = int(self.mlp_.n_iter_)
        return self

    def predict_proba(self, X):
        """Class probabilities; ndarray of shape (n_samples, n_classes), rows summing to 1."""
        X = self._validated(X)
        return self.mlp_.predict_proba(X)


class LocalSVMClassifier(_ProbabilisticHead):
    """Local learning: for each face, an SVM trained on its nearest Training faces only.

    The method of Bottou & Vapnik [2]_ as Ionescu et al. [3]_ used it on FER2013 (and Georgescu
    et al. [4]_ on CNN features): a k-nearest-neighbour search picks the ``n_neighbors``
    Training faces closest to the face to classify, a multi-class SVM is fitted on them alone,
    and that model labels only this one face. Where every neighbour has the same label, that
    label is the answer without a fit.

    Parameters
    ----------
    n_neighbors : int, default=200
        Training faces per local model (capped at the training-set size).
    kernel : {'rbf', 'linear'}, default='rbf'
        Kernel of each local :class:`~sklearn.svm.SVC`.
    C : float, default=10.0
        Inverse regularisation of each local SVM (the global ``svm`` head's default).
    gamma : float or 'scale', default='scale'
        RBF width, one for all local models; ``'scale'`` is ``1 / (n_features * X.var())`` on
        the whole Training set, as the global :class:`~sklearn.svm.SVC` computes it.
    calibration_samples : int, default=500
        Training faces on which the softmax temperature of the probabilities is fitted, each
        classified by a local model of its neighbours with itself left out.
    class_weight : {None, 'balanced'}, default=None
        Passed to each local SVM (balanced within the neighbourhood).
    n_jobs : int, optional
        Threads that fit local models at once (``None``: 1; ``-1``: all cores).
    random_state : int, default=0
        Seeds the choice of calibration faces.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    gamma_ : float
        The RBF width used.
    temperature_ : float
        Softmax temperature of the local decision values (fitted by log-loss on the calibration
        faces; the predicted class does not depend on it).
    X_ : ndarray of shape (n_train, n_features), dtype float32
        The Training faces, kept for the neighbour search (``4 * n_train * n_features`` bytes).
    y_ : ndarray of shape (n_train,), dtype int
        Their labels, as indices into ``classes_``.
    n_features_in_ : int

    Notes
    -----
    Predicting costs one neighbour search over the Training set plus one SVM fit on
    ``n_neighbors`` faces per face, so it is orders of magnitude slower per face than a global
    head; the benchmark's "predict img/s" column reports it. Probabilities are the softmax of
    the local SVM's one-vs-rest decision values divided by ``temperature_``; classes absent
    from a face's neighbourhood get probability 0. Neighbours are found by Euclidean distance
    on the head's input (in the pipelines, standardised and PCA-reduced features). Ionescu et
    al. compared faces with a kernel over bag-of-words histograms and used multiple kernel
    learning; this head uses one kernel.

    References
    ----------
    .. [2] Bottou, L. and Vapnik, V. "Local learning algorithms." Neural Computation 4(6), 1992.
           doi:10.1162/neco.1992.4.6.888
    .. [3] Ionescu, R. T., Popescu, M. and Grozea, C. "Local learning to improve bag of visual
           words model for facial expression recognition." ICML Workshop on Challenges in
           Representation Learning, 2013.
    .. [4] Georgescu, M.-I., Ionescu, R. T. and Popescu, M. "Local learning with deep and
           handcrafted features for facial expression recognition." IEEE Access 7, 2019.
           doi:10.1109/ACCESS.2019.2917266
    """

    def __init__(
        self, *, n_neighbors=200, kernel="rbf", C=10.0, gamma="scale", calibration_samples=500,
        class_weight=None, n_jobs=None, random_state=0,
    ):
        self.n_neighbors = n_neighbors
        self.kernel = kernel
        self.C = C
        self.gamma = gamma
        self.calibration_samples = calibration_samples
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Keep the Training faces for the neighbour search and fit the softmax temperature.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``kernel`` is not 'rbf' or 'linear', or ``n_neighbors`` is below 2.
        """
        from sklearn.neighbors import NearestNeighbors

        X, y = validate_data(self, X, y, dtype=_DTYPES)
        check_classification_targets(y)
        if self.kernel not in ("rbf", "linear"):
            raise ValueError(f"kernel must be 'rbf' or 'linear', got {self.kernel!r}")
        if int(self.n_neighbors) < 2:
            raise ValueError(f"n_neighbors must be at least 2, got {self.n_neighbors!r}")
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        self.X_ = np.ascontiguousarray(X, dtype=np.float32)
        self.gamma_ = _rbf_gamma(self.X_, self.gamma)
        self.neighbors_ = NearestNeighbors().fit(self.X_)
        self.temperature_ = self._fit_temperature()
        return self

    def _k(self) -> int:
        return min(int(self.n_neighbors), len(self.X_))

    def _fit_temperature(self) -> float:
        rng = np.random.default_rng(self.random_state)
        m = min(int(self.calibration_samples), len(self.X_))
        if m == 0 or self._k() >= len(self.X_):
            return 1.0
        rows = rng.choice(len(self.X_), size=m, replace=False)
        idx = self.neighbors_.kneighbors(self.X_[rows], n_neighbors=self._k() + 1, return_distance=False)
        # Leave each face out of its own neighbourhood (duplicates may push it off column 0).
        idx = np.array([[j for j in row if j != r][: self._k()] for r, row in zip(rows, idx)])
        margins = self._margins(self.X_[rows], idx)
        truth = self.y_[rows]
        best, best_loss = 1.0, np.inf
        for t in np.geomspace(0.01, 100.0, 81):
            logp = log_softmax(margins / t, axis=1)
            loss = -np.mean(np.maximum(logp[np.arange(m), truth], -50.0))
            if loss < best_loss:
                best, best_loss = float(t), loss
        return best

    def _margins(self, X, idx):
        """Local one-vs-rest decision values, ndarray of shape (n_samples, n_classes), -inf where absent."""
        from joblib import Parallel, delayed

        chunks = np.array_split(np.arange(len(X)), max(1, min(len(X), 64)))
        parts = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(self._margins_chunk)(X[c], idx[c]) for c in chunks if len(c)
        )
        return np.concatenate(parts) if parts else np.empty((0, len(self.classes_)))

    def _margins_chunk(self, X, idx):
        from sklearn.svm import SVC

        out = np.full((len(X), len(self.classes_)), -np.inf)
        for i, (x, rows) in enumerate(zip(X, idx)):
            labels = self.y_[rows]
            present = np.unique(labels)
            if len(present) == 1:
                out[i, present[0]] = 0.0
                continue
            svc = SVC(kernel=self.kernel, C=self.C, gamma=self.gamma_, class_weight=self.class_weight,
                      decision_function_shape="ovr").fit(self.X_[rows], labels)
            d = svc.decision_function(x[None, :].astype(np.float32))[0]
            if len(present) == 2:  # binary: one value, positive for the second class
                d = np.array([-d, d])
            out[i, svc.classes_] = d
        return out

    def predict_proba(self, X):
        """Class probabilities from each face's local SVM.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``; rows sum to 1.
        """
        X = self._validated(X)
        idx = self.neighbors_.kneighbors(np.asarray(X, dtype=np.float32), n_neighbors=self._k(), return_distance=False)
        return softmax(self._margins(X, idx) / self.temperature_, axis=1)


class BranchUnion(VotingClassifier):
    """Classifiers fitted side by side in threads, whose decision values are put side by side.

    The branches of the ``stacked-svm`` head as one estimator of a
    :class:`~sklearn.ensemble.StackingClassifier`: the stacking gives it each fold's rows once,
    and it fits every branch on them at the same time, each in a thread of this process, so the
    branches share those rows instead of copying them each (a fold of
    ``hog+lbp+landmarks+sift-fisher``'s Training rows is 3.2 GiB). ``decision_function`` returns
    the branches' decision values in the order of ``estimators``, which are the columns a
    :class:`~sklearn.ensemble.StackingClassifier` over the same branches would give its final
    model: the stacked model is the same, fitted in less time. The RBF SVC (libsvm) and the
    logistic regression (BLAS) of that head release the GIL while they compute.

    A :class:`~sklearn.ensemble.VotingClassifier` (hard voting) otherwise: ``predict`` is the
    branches' majority vote.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The branches: classifiers with ``decision_function``.
    voting : {'hard'}, default='hard'
        As in :class:`~sklearn.ensemble.VotingClassifier`; ``'soft'`` would need every branch's
        ``predict_proba``, which an SVC without ``probability=True`` lacks.
    weights, flatten_transform, verbose
        As in :class:`~sklearn.ensemble.VotingClassifier` (they do not concern
        ``decision_function``).
    n_jobs : int or None, default=None
        Branches fitted at the same time, each in a thread; ``-1``: all of them; ``None`` or 1:
        one after another. While several run, the BLAS thread pools are limited to their size
        before the fit divided by the number of branches running, so that the threads do not
        outnumber the cores.

    Attributes
    ----------
    estimators_ : list of classifiers
        The fitted branches (on labels encoded as 0 … n_classes-1).
    named_estimators_ : Bunch
    classes_ : ndarray of shape (n_classes,)
    le_ : LabelEncoder
    """

    def fit(self, X, y, **fit_params):
        """Fit every branch on ``X``, up to ``n_jobs`` at the same time.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : dict
            As in :meth:`sklearn.ensemble.VotingClassifier.fit`.

        Returns
        -------
        self
        """
        from joblib import effective_n_jobs, parallel_config
        from threadpoolctl import threadpool_info, threadpool_limits

        self._validate_params()  # n_jobs is used before VotingClassifier.fit checks it
        branches = sum(est != "drop" for _, est in self.estimators)
        workers = 1 if self.n_jobs is None else min(branches, effective_n_jobs(self.n_jobs))
        if workers <= 1:
            return super().fit(X, y, **fit_params)
        blas = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)
        # threads, not processes: the branches read the same X, and nested joblib calls in a
        # thread (a ColumnTransformer's) run one task at a time
        with parallel_config(backend="threading"), threadpool_limits(max(1, blas // workers), user_api="blas"):
            return super().fit(X, y, **fit_params)

    def decision_function(self, X):
        """The branches' decision values, side by side.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_values)
            Each branch's ``decision_function`` in the order of ``estimators``, a 1-d one as
            one column (``n_values`` is 21 + 7 for ``stacked-svm``'s one-vs-one SVC and
            seven-class logistic regression).
        """
        check_is_fitted(self)
        return np.hstack([np.asarray(est.decision_function(X)).reshape(X.shape[0], -1) for est in self.estimators_])

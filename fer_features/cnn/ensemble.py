"""Trained CNNs as one classifier: the mean of their probabilities (``--clf cnn-ensemble``)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from fer_features.cnn.classifier import CNNClassifier
from fer_features.features.base import check_images


def checkpoint_paths(checkpoints) -> list[str]:
    """``'a.pt+b.pt'`` (spaces around ``+`` ignored), one path, or a sequence of paths → a list of path strings."""
    import os

    if isinstance(checkpoints, (str, os.PathLike)):
        return [p.strip() for p in os.fspath(checkpoints).split("+") if p.strip()]
    return [os.fspath(p) for p in checkpoints]


def _log_proba(p: np.ndarray) -> np.ndarray:
    """Log-probabilities, zeros clipped to 1e-12 (the logits that temperature scaling divides)."""
    return np.log(np.clip(p, 1e-12, 1.0))


def _check_labels(y, classes, what: str) -> list[str]:
    """The class names as strings, or a ValueError naming the labels of ``y`` that are not among them."""
    names = [str(c) for c in classes]
    unknown = sorted(set(np.asarray(y).astype(str).tolist()) - set(names))
    if unknown:
        raise ValueError(f"{what} {unknown} are not among the networks' classes {names}")
    return names


def _prior_correction(value) -> float:
    """``value`` as a float >= 0, or a ValueError."""
    try:
        tau = float(value)
    except (TypeError, ValueError):
        tau = float("nan")
    if isinstance(value, (str, bool)) or not tau >= 0:
        raise ValueError(f"prior_correction must be a number >= 0, got {value!r}")
    return tau


def _positive_temperature(value) -> float:
    """``value`` as a positive float, or a ValueError."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, (str, bool)) or not t > 0:
        raise ValueError(f"temperature must be 'auto' or a positive number, got {value!r}")
    return t


class CNNEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Trained CNNs as one classifier: the mean of their class probabilities (soft voting).

    The networks are trained already (``fer train --clf cnn``, or on a GPU); ``fit`` loads them
    (:meth:`CNNClassifier.from_checkpoint`), checks that they name the same classes and that
    the labels are among them, and trains nothing. ``predict_proba`` is the unweighted mean of
    the members' softmax probabilities, as a soft-voting
    :class:`~sklearn.ensemble.VotingClassifier` over them would give; it is written here because
    that one validates neither face crops nor pre-trained members. Networks of different sizes
    and training runs err on different faces, so their mean is more accurate than the best of
    them (Hansen & Salamon 1990; on FER2013: BENCHMARKS.md, section "CNNs trained on a GPU").

    Networks trained with label smoothing or distilled from soft targets give soft
    probabilities, and their mean is softer still: ``make accurate``'s mean top probability was
    0.574 at 0.7297 PrivateTest accuracy. So the mean is temperature-scaled (Guo et al. 2017),
    ``softmax(log(p) / T)``, with ``T`` fitted on a validation split given to :meth:`fit` (the
    selection split, PublicTest, in ``fer train``); the labels do not change
    (BENCHMARKS.md, section "Probability calibration").

    FER2013's classes are far from balanced (a quarter of the Training faces are happy, 1.5%
    disgusted), and the networks learned those frequencies as priors. ``prior_correction``
    ``tau`` divides the mean probabilities by the Training class frequencies to the power
    ``tau`` before the temperature, ``log(p) - tau * log(prior)`` (post-hoc logit adjustment,
    Menon et al. 2021): ``tau = 1`` is the Bayes rule for balanced classes when ``p`` is
    calibrated, smaller values go part of the way. It trades accuracy on FER2013's own mix for
    recall of the rare classes, for photos whose emotions are not mixed as FER2013's are
    (balanced accuracy; BENCHMARKS.md, section "Robustness").

    Parameters
    ----------
    checkpoints : str, path-like or sequence of them, default=''
        The members' checkpoints (``.pt``): paths joined by ``+``, or a sequence of paths.
    precision : {'auto', 'bf16', 'fp32', 'int8'}, default='auto'
        Inference arithmetic of every member (:meth:`CNNClassifier.from_checkpoint`); int8 needs
        each checkpoint's calibration (``fer quantize``) and infers in the batch size measured
        for that network.
    tta : {False, True, 'flip', 'ten-crop'}, default=False
        Test-time augmentation of every member.
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
    temperature : float or 'auto', default='auto'
        ``'auto'``: fitted on ``X_val, y_val`` by log loss (1.0 when :meth:`fit` gets none); a
        number: used as given (1.0: the plain mean). It is fitted on the plain mean: with
        ``tta`` the members' probabilities are averaged over views first, and the same
        temperature is applied to them.

    prior_correction : float, default=0.0
        ``tau >= 0``, the power of the Training class frequencies the probabilities are divided
        by (0: none). The frequencies are those of ``y`` in :meth:`fit`, each count plus one.

    Changing ``checkpoints``, ``precision`` or ``device`` of a fitted ensemble with
    :meth:`set_params` loads its members again (new ``checkpoints`` also reset a fitted
    temperature to 1.0: fit again); ``tta`` is passed on to them.

    Attributes
    ----------
    estimators_ : list of CNNClassifier
        The members, in the order of ``checkpoints``.
    classes_ : ndarray of shape (n_classes,)
        Their class names.
    checkpoints_ : list of str
        The members' paths, as loaded.
    temperature_ : float
        The temperature applied to the mean probabilities.
    class_prior_ : ndarray of shape (n_classes,), dtype float64
        The class frequencies of ``y`` in :meth:`fit` (counts plus one, normalised): the prior
        that ``prior_correction`` divides out.

    References
    ----------
    .. [1] Hansen, L. K. and Salamon, P. "Neural network ensembles." IEEE Transactions on
           Pattern Analysis and Machine Intelligence 12(10), 993–1001, 1990.
           doi:10.1109/34.58871
    .. [2] Kittler, J., Hatef, M., Duin, R. P. W. and Matas, J. "On combining classifiers."
           IEEE TPAMI 20(3), 226–239, 1998. doi:10.1109/34.667881
    .. [3] Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. "On calibration of modern neural
           networks." ICML 2017. arXiv:1706.04599
    .. [4] Menon, A. K., Jayasumana, S., Rawat, A. S., Jain, H., Veit, A. and Kumar, S.
           "Long-tail learning via logit adjustment." ICLR 2021. arXiv:2007.07314

    Examples
    --------
    >>> from fer_features.cnn import CNNEnsembleClassifier
    >>> clf = CNNEnsembleClassifier(checkpoints="models/cnn-large.pt+models/cnn-compact-ens.pt", precision="int8")  # doctest: +SKIP
    >>> clf.fit(X_train, y_train).predict_proba(X_test).shape  # doctest: +SKIP
    (3589, 7)
    """

    def __init__(self, *, checkpoints="", precision="auto", tta=False, device="auto", temperature="auto", prior_correction=0.0):
        self.checkpoints = checkpoints
        self.precision = precision
        self.tta = tta
        self.device = device
        self.temperature = temperature
        self.prior_correction = prior_correction

    def fit(self, X, y, X_val=None, y_val=None):
        """Load the member networks, check them against the labels and fit the temperature.

        No network is trained.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8
            Face crops; only checked (the members are trained already).
        y : array-like of shape (n_samples,)
            Labels (emotion names); each must be one of the members' classes.
        X_val, y_val : optional
            The split the temperature is fitted on (``temperature='auto'``): never the faces
            the model is scored on.

        The class frequencies of ``y`` become ``class_prior_``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If no checkpoint is given, a checkpoint cannot be loaded (or lacks the int8
            calibration that ``precision='int8'`` needs), the members' classes differ, a label
            is not among them, ``temperature`` is neither 'auto' nor a positive number, or
            ``prior_correction`` is not a number >= 0.
        FileNotFoundError
            If a checkpoint is missing.
        """
        X = check_images(X, estimator="CNNEnsembleClassifier", min_size=16)
        check_consistent_length(X, y)
        paths, members = self.load_members()
        names = _check_labels(y, members[0].classes_, "labels")
        _prior_correction(self.prior_correction)
        labels = np.asarray(y).astype(str)
        counts = np.array([np.sum(labels == c) for c in names], dtype=np.float64) + 1.0
        self.class_prior_ = counts / counts.sum()
        self.estimators_ = members
        self.classes_ = np.asarray(members[0].classes_)
        self.checkpoints_ = paths
        self.temperature_ = 1.0
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val (the temperature's validation split), or neither")
        if self.temperature != "auto":
            self.temperature_ = _positive_temperature(self.temperature)
        elif X_val is not None:
            self.temperature_ = self._fit_temperature(X_val, y_val)
        return self

    def _fit_temperature(self, X_val, y_val) -> float:
        """The temperature minimising the log loss of the (prior-corrected) mean probabilities on ``X_val``."""
        from scipy.optimize import minimize_scalar
        from scipy.special import log_softmax

        X_val = check_images(X_val, estimator="CNNEnsembleClassifier", min_size=16)
        check_consistent_length(X_val, y_val)
        classes = _check_labels(y_val, self.classes_, "validation labels")
        column = {c: i for i, c in enumerate(classes)}
        rows = np.arange(len(y_val)), np.asarray([column[v] for v in np.asarray(y_val).astype(str)])
        log_p = self._scores(X_val)

        def log_loss(t):
            return float(-np.mean(log_softmax(log_p / t, axis=1)[rows]))

        return round(float(minimize_scalar(log_loss, bounds=(0.05, 10.0), method="bounded").x), 4)

    def _scores(self, X) -> np.ndarray:
        """``log`` of the mean probabilities less ``prior_correction * log(class_prior_)``: the logits the temperature divides."""
        scores = _log_proba(self._mean_proba(X))
        tau = float(getattr(self, "prior_correction", 0.0))  # models saved before the parameter existed
        return scores - tau * np.log(self.class_prior_) if tau else scores

    def _mean_proba(self, X):
        classes = [str(c) for c in self.classes_]
        total = 0.0
        for member in self.estimators_:
            p = member.predict_proba(X)
            own = [str(c) for c in member.classes_]
            total = total + (p if own == classes else p[:, [own.index(c) for c in classes]])  # columns matched by name
        return total / len(self.estimators_)

    def load_members(self):
        """Load the member networks of ``checkpoints`` and check that they name the same classes
        (in any order: each member's probabilities are matched to the first's by class name).

        Returns
        -------
        paths : list of str
        members : list of CNNClassifier
            Fitted, from their checkpoints, with this ensemble's ``precision``, ``tta`` and ``device``.

        Raises
        ------
        ValueError, FileNotFoundError
            As :meth:`fit`, but for the labels (each message names the checkpoint).
        """
        paths = checkpoint_paths(self.checkpoints)
        if not paths:
            raise ValueError("CNNEnsembleClassifier needs checkpoints: paths of trained CNNs (.pt) joined by '+'")
        members = []
        for path in paths:
            try:
                members.append(CNNClassifier.from_checkpoint(path, tta=self.tta, device=self.device, precision=self.precision))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
        classes = [str(c) for c in members[0].classes_]
        for path, member in zip(paths[1:], members[1:]):
            if sorted(str(c) for c in member.classes_) != sorted(classes):
                raise ValueError(f"{path}: its classes {[str(c) for c in member.classes_]} differ from {paths[0]}'s {classes}")
        return paths, members

    def set_params(self, **params):
        """Set parameters; a fitted ensemble passes ``tta`` on to its members and loads them again
        for new ``checkpoints``, ``precision`` or ``device`` (each with its own int8 batch size)."""
        if "prior_correction" in params:  # applied at once, with the temperature fitted before (fit again to refit it)
            _prior_correction(params["prior_correction"])
        super().set_params(**params)
        if hasattr(self, "estimators_"):
            if "temperature" in params and params["temperature"] != "auto":  # 'auto' keeps the fitted one until fit
                self.temperature_ = _positive_temperature(params["temperature"])
            if "checkpoints" in params and self.temperature == "auto":
                self.temperature_ = 1.0  # fitted for other networks
            if {"checkpoints", "precision", "device"} & set(params):
                self.checkpoints_, self.estimators_ = self.load_members()
                self.classes_ = np.asarray(self.estimators_[0].classes_)
            elif "tta" in params:
                for member in self.estimators_:
                    member.tta = params["tta"]
        return self

    def predict_proba(self, X):
        """Mean of the members' class probabilities, prior-corrected and temperature-scaled, ``(n_samples, n_classes)`` float64."""
        check_is_fitted(self, "estimators_")
        X = check_images(X, estimator="CNNEnsembleClassifier", min_size=16)
        from scipy.special import softmax

        t = getattr(self, "temperature_", 1.0)
        if t == 1.0 and not getattr(self, "prior_correction", 0.0):
            return self._mean_proba(X)
        return softmax(self._scores(X) / t, axis=1)

    def predict(self, X):
        """Most probable label per image, ``(n_samples,)``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def inference_precision(self) -> str:
        """The members' inference arithmetic on this machine (``'int8'``, ``'bf16'`` or ``'fp32'``)."""
        check_is_fitted(self, "estimators_")
        return "+".join(sorted({m.inference_precision() for m in self.estimators_}))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = False
        return tags

"""Classifier heads by name: the last step(s) of a feature pipeline.

Each head is preceded in :func:`fer_features.training.pipelines.build_pipeline` by standardisation and
(by default) PCA, and every head gives ``predict_proba``, so ``fer predict`` can always show
class probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import ClassifierMixin

from fer_features.config import CLASS_WEIGHTS
from fer_features.registry import Registry


def _svm(*, class_weight=None, random_state=0, n_jobs=None, C=10.0, gamma="scale", calibration_cv=3):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    svc = SVC(kernel="rbf", C=C, gamma=gamma, class_weight=class_weight, cache_size=1000, random_state=random_state)
    # Probabilities by temperature scaling (softmax of the decision values / T) fitted on
    # cross-validated decision values: it keeps the SVC's ranking of classes, so accuracy is
    # the plain SVC's (per-class sigmoids cost accuracy). With ensemble=False the final SVC is
    # fitted once on all the data; the fold fits only provide calibration data (its cost:
    # BENCHMARKS.md, "Measurements behind defaults in the code").
    return CalibratedClassifierCV(svc, method="temperature", cv=calibration_cv, ensemble=False, n_jobs=n_jobs)


def _linear_svm(*, class_weight=None, random_state=0, n_jobs=None, C=0.01, calibration_cv=3):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    svc = LinearSVC(C=C, class_weight=class_weight, random_state=random_state, max_iter=5000)
    return CalibratedClassifierCV(svc, method="temperature", cv=calibration_cv, ensemble=False, n_jobs=n_jobs)


def _histogram_svm(kernel):
    def factory(*, class_weight=None, random_state=0, n_jobs=None, C=1.0, power=1.0, block_sizes=None, calibration_cv=3):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.pipeline import Pipeline
        from sklearn.svm import LinearSVC

        from fer_features.heads.kernels import HistogramKernelMap

        # A linear SVM on the explicit feature map is the additive-kernel SVM (Vedaldi &
        # Zisserman 2012), at linear cost; probabilities by temperature scaling, as for svm.
        svc = LinearSVC(C=C, class_weight=class_weight, random_state=random_state, max_iter=5000)
        return Pipeline([
            ("map", HistogramKernelMap(kernel=kernel, block_sizes=block_sizes, power=power)),
            ("svm", CalibratedClassifierCV(svc, method="temperature", cv=calibration_cv, ensemble=False, n_jobs=n_jobs)),
        ])

    return factory


def _gbm(*, class_weight=None, random_state=0, n_jobs=None, max_iter=500, learning_rate=0.1, max_leaf_nodes=31):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # HistGradientBoosting threads through OpenMP itself; n_jobs does not apply.
    return HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        class_weight=class_weight,
        random_state=random_state,
    )


def _logreg(*, class_weight=None, random_state=0, n_jobs=None, C=0.1, max_iter=2000):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, class_weight=class_weight, random_state=random_state)


def _nystroem(*, class_weight=None, random_state=0, n_jobs=None, n_components=2000, C=1.0, linear="logreg", **params):
    from fer_features.heads.estimators import NystroemClassifier

    return NystroemClassifier(
        n_components=n_components, C=C, linear=linear, class_weight=class_weight, random_state=random_state, **params
    )


def _mlp(*, class_weight=None, random_state=0, n_jobs=None, **params):
    from fer_features.heads.estimators import MLPHead

    return MLPHead(class_weight=class_weight, random_state=random_state, **params)


def _local_svm(*, class_weight=None, random_state=0, n_jobs=None, **params):
    from fer_features.heads.estimators import LocalSVMClassifier

    return LocalSVMClassifier(class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **params)


def _stacked_svm(
    *,
    class_weight=None,
    random_state=0,
    n_jobs=None,
    blocks=None,
    linear_features=("sift-bovw", "sift-fisher"),
    pca=256,
    C=10.0,
    gamma="scale",
    linear_C=None,
    linear_model="auto",
    linear_tol=1e-3,
    decision_function_shape="ovo",
    cv=3,
    branch_jobs=None,
):
    """Late fusion by stacking (Wolpert 1992), the multiple-kernel idea of Ionescu et al. 2013.

    ``blocks`` lists ``(feature name, columns)`` in the order of the feature matrix. Each block
    named in ``linear_features`` (the bag of visual words: thousands of sparse presence or count
    columns) gets a linear SVM of its own (``linear_C``); all the other blocks, joined, get the
    ``svm`` head's branch: standardisation, PCA to ``pca`` components and an RBF SVC (``C``,
    ``gamma``). A multinomial logistic regression learns from the branches' decision values
    (the SVC's one-vs-one margins, or with ``decision_function_shape='ovr'`` its one-vs-rest
    votes, which also work when a fold lacks a class; the linear SVM's one-vs-rest margins)
    on ``cv``-fold held-out Training rows how to weigh them, and gives the probabilities
    (:class:`~sklearn.ensemble.StackingClassifier`); each branch is then refitted on all rows.
    ``linear_model`` is the linear branches' model: ``'svm'`` (LinearSVC), ``'logreg'`` (a
    multinomial logistic regression, lbfgs, which keeps dense float32 input as it is), or
    ``'auto'``: logistic regression for the Fisher vectors (``sift-fisher``, 40,960 dense
    columns, which liblinear would copy into 16 bytes a value: 19 GB for FER2013's Training),
    the linear SVM for the rest. ``linear_C`` (their C) defaults to 0.2 for the SVM and 1.0 for
    the logistic regression, the values chosen on PublicTest (BENCHMARKS.md, section
    "Hand-crafted features: the search for 0.66"). ``linear_tol`` is the logistic regression's
    lbfgs tolerance: 1e-3 instead of scikit-learn's 1e-4 halves its iterations (54 against 98 on
    8,000 Training faces' Fisher vectors) for a stacked PublicTest of 0.5860 against 0.5868 there.

    With a Fisher-vector branch (or with ``branch_jobs`` given), the branches are one
    :class:`~fer_features.heads.estimators.BranchUnion` inside the stacking: the stacking fits one fold at
    a time (``n_jobs=1``: a copy of the Fisher vectors' Training rows is ~3 GB), and the union
    fits the fold's branches side by side in ``branch_jobs`` threads (default ``n_jobs``) that
    share its rows. The stacked model is the one the branches would give on their own. Without
    either, the branches are the stacking's own, its folds and branches spread over ``n_jobs``
    workers.
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if linear_model not in ("auto", "svm", "logreg"):
        raise ValueError(f"linear_model must be 'auto', 'svm' or 'logreg', got {linear_model!r}")
    if not blocks:
        raise ValueError("stacked-svm needs the feature blocks: build it with build_pipeline or build_head(block_names=...)")
    starts = np.cumsum([0] + [int(size) for _, size in blocks])
    linear = [(name, slice(int(starts[i]), int(starts[i + 1]))) for i, (name, _) in enumerate(blocks) if name in linear_features]
    other = [np.arange(starts[i], starts[i + 1]) for i, (name, _) in enumerate(blocks) if name not in linear_features]
    branches = []
    if other:
        cols = np.concatenate(other)
        reducer = PCA(n_components=int(pca), random_state=random_state) if pca is not None and len(cols) > int(pca) else "passthrough"
        if np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
            cols = slice(int(cols[0]), int(cols[0]) + len(cols))  # one contiguous run of columns
        names = "+".join(name for name, _ in blocks if name not in linear_features)
        branches.append((names, Pipeline([
            ("select", ColumnTransformer([("columns", "passthrough", cols)], sparse_threshold=0.0)),
            ("scale", StandardScaler()),
            ("pca", reducer),
            # one-vs-one decision values (21 for 7 classes): the margins themselves, which the
            # final model weighs better than the vote counts of the one-vs-rest shape (PublicTest
            # 0.6272 against 0.6183 with hog+lbp+landmarks and sift-bovw; BENCHMARKS.md)
            ("svm", SVC(kernel="rbf", C=C, gamma=gamma, class_weight=class_weight, cache_size=1000,
                        decision_function_shape=decision_function_shape, random_state=random_state)),
        ])))
    for name, cols in linear:
        kind = linear_model if linear_model != "auto" else ("logreg" if name == "sift-fisher" else "svm")
        if kind == "logreg":
            C_ = 1.0 if linear_C is None else linear_C
            model = LogisticRegression(C=C_, tol=linear_tol, class_weight=class_weight, max_iter=1000,
                                       random_state=random_state)
        else:
            C_ = 0.2 if linear_C is None else linear_C
            model = LinearSVC(C=C_, class_weight=class_weight, max_iter=5000, random_state=random_state)
        branches.append((name, Pipeline([
            ("select", ColumnTransformer([("columns", "passthrough", cols)], sparse_threshold=1.0)),
            (kind, model),
        ])))
    final = LogisticRegression(max_iter=2000, class_weight=class_weight, random_state=random_state)
    dense_linear = any(name == "sift-fisher" for name, _ in linear)
    if branch_jobs is None and not dense_linear:
        return StackingClassifier(branches, final_estimator=final, cv=cv, stack_method="decision_function",
                                  n_jobs=n_jobs)
    from fer_features.heads.estimators import BranchUnion

    # The stacking fits one fold at a time (each copy of the Fisher vectors' Training rows is ~3 GB:
    # with 2 workers `fer train` on FER2013 was killed for memory, 14 GB resident, on a 24 GB
    # machine); inside a fold its branches are fitted side by side, in threads that share the rows.
    union = BranchUnion(branches, n_jobs=n_jobs if branch_jobs is None else branch_jobs)
    return StackingClassifier([("branches", union)], final_estimator=final, cv=cv, stack_method="decision_function",
                              n_jobs=1)


def _cnn(*, class_weight=None, random_state=0, n_jobs=None, **params):
    from fer_features.torch_utils import require_torch

    require_torch("the cnn classifier")
    from fer_features.cnn.classifier import CNNClassifier  # imports torch: only when asked for

    if class_weight is not None:
        raise ValueError("class_weight is not supported by the cnn classifier")
    return CNNClassifier(seed=random_state, **params)


def _cnn_ensemble(*, class_weight=None, random_state=0, n_jobs=None, **params):
    from fer_features.torch_utils import require_torch

    require_torch("the cnn-ensemble classifier")
    from fer_features.cnn.ensemble import CNNEnsembleClassifier  # imports torch: only when asked for

    if class_weight is not None:
        raise ValueError("class_weight is not supported by the cnn-ensemble classifier (its networks are trained already)")
    return CNNEnsembleClassifier(**params)


#: Probability calibration by temperature scaling (:class:`~sklearn.calibration.CalibratedClassifierCV`,
#: ``method='temperature'``): the scikit-learn types it leaves in a model file that skops does not
#: trust by itself (the ``svm`` heads, and ``fer train --calibrate`` on any head).
CALIBRATION_TYPES = ("sklearn.calibration._CalibratedClassifier", "sklearn.calibration._TemperatureScaling")

#: Tag of the heads that take the face crops themselves rather than extracted features.
END_TO_END_TAG = "end to end"
#: Tag of the end-to-end heads made of networks trained already (``--cnn-checkpoint``): fitting loads them.
CHECKPOINT_TAG = "needs a checkpoint"
#: Tag of the heads made for histogram features: they take the raw feature blocks (no scaling, no
#: PCA), normalise each histogram block themselves and need the blocks' sizes (``block_sizes``).
HISTOGRAM_TAG = "histogram block"
#: Tag of the heads that split the feature matrix by extractor themselves (scaling and PCA inside
#: their branches): they need the blocks' names and sizes (``blocks``).
FEATURE_BLOCK_TAG = "feature block"

#: The classifier heads by name: factory ``(class_weight=..., random_state=..., n_jobs=..., **params)``,
#: description, tags and the types a fitted head holds (the skops trust list is their union).
HEADS = Registry("classifier")
HEADS.register("svm", _svm, "RBF-kernel SVC (libsvm), temperature-scaled probabilities (Cortes & Vapnik 1995)",
               library_types=CALIBRATION_TYPES)
HEADS.register("linear-svm", _linear_svm, "linear SVM (liblinear), temperature-scaled probabilities",
               library_types=CALIBRATION_TYPES)
HEADS.register(
    "chi2-svm", _histogram_svm("chi2"),
    "linear SVM on the χ² kernel's feature map of L1-normalised histograms (Vedaldi & Zisserman 2012)",
    tags=(HISTOGRAM_TAG,), types=("fer_features.heads.kernels.HistogramKernelMap",), library_types=CALIBRATION_TYPES,
)
HEADS.register(
    "intersection-svm", _histogram_svm("intersection"),
    "linear SVM on the histogram-intersection kernel's feature map (Maji et al. 2008; Vedaldi & Zisserman 2012)",
    tags=(HISTOGRAM_TAG,), types=("fer_features.heads.kernels.HistogramKernelMap",), library_types=CALIBRATION_TYPES,
)
HEADS.register("gbm", _gbm, "histogram gradient boosting (scikit-learn's LightGBM-style trees)",
               library_types=("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",))
HEADS.register("logreg", _logreg, "multinomial logistic regression")
HEADS.register(
    "nystroem", _nystroem, "fast RBF: Nystroem kernel map (2,000 landmarks) + logistic regression (Williams & Seeger 2000)",
    types=("fer_features.heads.estimators.NystroemClassifier",), library_types=CALIBRATION_TYPES,  # linear='svm' is calibrated
)
HEADS.register(
    "mlp", _mlp, "fast: one hidden layer of 512 ReLU units (Adam, early stopping)",
    types=("fer_features.heads.estimators.MLPHead",), library_types=("sklearn.neural_network._stochastic_optimizers.AdamOptimizer",),
)
HEADS.register(
    "local-svm", _local_svm,
    "local learning: an RBF SVM per face on its 200 nearest Training faces (Bottou & Vapnik 1992; Ionescu et al. 2013)",
    types=("fer_features.heads.estimators.LocalSVMClassifier",),
    # its NearestNeighbors builds a k-d tree on 15 columns or fewer (PCA to few components)
    library_types=("sklearn.neighbors._kd_tree.KDTree", "sklearn.metrics._dist_metrics.EuclideanDistance64"),
)
HEADS.register(
    "stacked-svm", _stacked_svm,
    "late fusion: a linear SVM on the bag of visual words, an RBF SVM on the other features, stacked by logistic regression",
    tags=(FEATURE_BLOCK_TAG,), types=("fer_features.heads.estimators.BranchUnion",),
    library_types=("sklearn.utils._bunch.Bunch",),  # StackingClassifier.named_estimators_ (a dict)
)
HEADS.register(
    "cnn", _cnn, "the CNN trained end to end on the pixels (the baseline); ignores --features",
    tags=(END_TO_END_TAG,), types=("fer_features.cnn.classifier.CNNClassifier",),
)
HEADS.register(
    "cnn-ensemble", _cnn_ensemble,
    "trained CNNs (--cnn-checkpoint a.pt+b.pt) as one: the mean of their probabilities; trains nothing",
    tags=(END_TO_END_TAG, CHECKPOINT_TAG),
    types=("fer_features.cnn.ensemble.CNNEnsembleClassifier", "fer_features.cnn.classifier.CNNClassifier"),
)

#: Heads that take the face crops themselves rather than extracted features.
END_TO_END = HEADS.tagged(END_TO_END_TAG)

#: End-to-end heads made of networks trained already (``--cnn-checkpoint``): fitting loads them.
PRETRAINED = HEADS.tagged(CHECKPOINT_TAG)

#: Heads made for histogram features (:data:`HISTOGRAM_TAG`).
HISTOGRAM_HEADS = HEADS.tagged(HISTOGRAM_TAG)

#: Heads that split the feature matrix by extractor themselves (:data:`FEATURE_BLOCK_TAG`).
BLOCK_HEADS = HEADS.tagged(FEATURE_BLOCK_TAG)


def list_classifiers() -> dict[str, str]:
    """Registered classifier names and their one-line descriptions."""
    return HEADS.describe()


def register_classifier(
    name: str,
    factory: Callable[..., ClassifierMixin],
    description: str,
    *,
    tags: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
    library_types: tuple[str, ...] = (),
) -> None:
    """Make a classifier head available by name (``fer train --clf NAME``).

    ``factory`` is called as ``factory(class_weight=..., random_state=..., n_jobs=..., **params)``
    and must return an unfitted scikit-learn classifier with ``predict_proba``. ``types`` and
    ``library_types`` name the types its fitted head holds beyond those skops trusts (they join
    the trust list of :func:`fer_features.persist.files.load_model`); ``tags`` its kinds, e.g.
    :data:`END_TO_END_TAG`.
    """
    HEADS.register(name, factory, description, tags=tags, types=types, library_types=library_types)


def make_classifier(
    name: str,
    *,
    class_weight: str | None = None,
    random_state: int = 0,
    n_jobs: int | None = None,
    **params,
) -> ClassifierMixin:
    """Build an unfitted classifier head.

    Parameters
    ----------
    name : {'svm', 'linear-svm', 'gbm', 'logreg', 'nystroem', 'mlp'} or a registered name
    class_weight : {None, 'balanced'}, default=None
    random_state : int, default=0
    n_jobs : int, optional
        Parallel workers where the head can use them (calibration folds).
    **params
        Head-specific hyper-parameters, e.g. ``C=5`` for ``svm``.

    Returns
    -------
    classifier : scikit-learn classifier with ``predict_proba``

    Raises
    ------
    ValueError
        If the name or ``class_weight`` is unknown, or a parameter does not apply.
    """
    factory = HEADS.factory(name)  # an unknown name: ValueError listing the valid ones
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
    try:
        return factory(class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **params)
    except TypeError as exc:
        raise ValueError(f"bad parameter for classifier {name!r}: {exc}") from None

"""Feature pipelines: face crops → features → scaling → PCA → classifier, as one sklearn Pipeline."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from fer_features.config import DEFAULT_CLASSIFIER, DEFAULT_FEATURES, DEFAULT_PCA, IMAGE_SIZE
from fer_features.features import make_features
from fer_features.heads.registry import BLOCK_HEADS, END_TO_END, HISTOGRAM_HEADS, make_classifier


def block_dims(spec: str, image_size: int = IMAGE_SIZE, feature_params: dict | None = None) -> list[int]:
    """Length of each extractor's block in the feature vector of a spec, in spec order.

    Computed from each extractor's parameters (:meth:`FaceImageTransformer.feature_dims
    <fer_features.features.base.FaceImageTransformer.feature_dims>`; a vocabulary-learning
    extractor such as ``sift-bovw`` knows its length from them too). An extractor of another
    kind is fitted on one blank crop.

    Returns
    -------
    list of int
    """
    return union_block_dims(make_features(spec, params=feature_params), image_size)


def union_block_dims(union: FeatureUnion, image_size: int = IMAGE_SIZE) -> list[int]:
    """:func:`block_dims` of a feature union built already (its spec is not parsed again)."""
    out = []
    for _, step in union.transformer_list:
        if hasattr(step, "feature_dims"):
            out.append(int(step.feature_dims((image_size, image_size))))
        else:
            fitted = clone(step).fit(np.zeros((1, image_size, image_size), np.uint8))
            out.append(len(fitted.get_feature_names_out()))
    return out


def feature_dims(spec: str, image_size: int = IMAGE_SIZE, feature_params: dict | None = None) -> int:
    """Length of the feature vector a spec gives for square crops of ``image_size`` pixels.

    The sum of :func:`block_dims`: nothing is fitted, so a ``vgg16`` spec loads no weights.

    Parameters
    ----------
    spec : str
        Feature names joined by ``+``.
    image_size : int, default=48
    feature_params : dict of {name: dict}, optional

    Returns
    -------
    int
    """
    return sum(block_dims(spec, image_size, feature_params))


def build_pipeline(
    features: str | None = DEFAULT_FEATURES,
    clf: str = DEFAULT_CLASSIFIER,
    *,
    pca: int | None = DEFAULT_PCA,
    class_weight: str | None = None,
    n_jobs: int | None = None,
    memory=None,
    random_state: int = 0,
    feature_params: dict[str, dict] | None = None,
    clf_params: dict | None = None,
) -> Pipeline:
    """Build an unfitted facial-expression pipeline.

    Parameters
    ----------
    features : str, default='hog+lbp+landmarks'
        Feature spec: registered names joined by ``+`` (see :func:`fer_features.features.list_features`).
        ``None`` (or ``'pixels'``) for an end-to-end head such as ``cnn``.
    clf : str, default='svm'
        Classifier head (see :func:`fer_features.heads.registry.list_classifiers`).
    pca : int or None, default=256
        Components kept after standardisation; ``None`` keeps every feature. When the
        features have no more dimensions than this, PCA is left out.
    class_weight : {None, 'balanced'}, default=None
    n_jobs : int, optional
        Parallel workers for feature extraction and calibration folds; ``-1`` all cores.
    memory : str, path or joblib.Memory, optional
        Cache of fitted transformers (:class:`~sklearn.pipeline.Pipeline`'s ``memory``).
    random_state : int, default=0
    feature_params : dict of {name: dict}, optional
        Extra parameters per feature extractor, e.g. ``{"hog": {"orientations": 12}}``.
    clf_params : dict, optional
        Extra parameters of the classifier head, e.g. ``{"C": 5}``.

    Returns
    -------
    Pipeline
        Steps ``features`` (FeatureUnion), ``scale`` (StandardScaler), ``pca`` (PCA or
        ``'passthrough'``) and ``clf``; for an end-to-end head, the single step ``clf``. Fit it on ``X`` of shape ``(n_samples, 48, 48)``,
        dtype uint8, and emotion names as ``y``; its ``classes_`` are then those names.

    Raises
    ------
    ValueError
        For an unknown feature, classifier or parameter.

    Examples
    --------
    >>> from fer_features.training.pipelines import build_pipeline
    >>> pipe = build_pipeline("hog", "logreg")
    >>> [name for name, _ in pipe.steps]
    ['features', 'scale', 'pca', 'clf']
    """
    if clf in END_TO_END:
        if features not in (None, "pixels"):
            raise ValueError(f"the {clf} classifier learns from the pixels: give no features (got {features!r})")
        head = make_classifier(clf, class_weight=class_weight, random_state=random_state, **(clf_params or {}))
        return Pipeline([("clf", head)], memory=memory)
    union = make_features(features, n_jobs=n_jobs, params=feature_params)  # the spec, parsed once
    return feature_pipeline(
        union, clf, pca=pca, class_weight=class_weight, n_jobs=n_jobs, memory=memory, random_state=random_state,
        clf_params=clf_params,
    )


def feature_pipeline(
    union: FeatureUnion,
    clf: str = DEFAULT_CLASSIFIER,
    *,
    block_dims: list[int] | None = None,
    pca: int | None = DEFAULT_PCA,
    class_weight: str | None = None,
    n_jobs: int | None = None,
    memory=None,
    random_state: int = 0,
    clf_params: dict | None = None,
) -> Pipeline:
    """:func:`build_pipeline` from a feature union built already: the union, then :func:`build_head`.

    Parameters
    ----------
    union : FeatureUnion
        From :func:`fer_features.features.make_features` (its step names are the extractors').
    clf : str, default='svm'
        A feature-pipeline head.
    block_dims : list of int, optional
        The width of each extractor's block, when it is known already (``fer train`` knows it
        from the copies it fits on one blank crop to check the parameters, so a CNN checkpoint
        is not read again for its width); else from the extractors' parameters
        (:func:`union_block_dims`).
    pca, class_weight, n_jobs, memory, random_state, clf_params
        As in :func:`build_pipeline`.

    Returns
    -------
    Pipeline
    """
    blocks = block_dims
    if blocks is None and (pca is not None or clf in HISTOGRAM_HEADS | BLOCK_HEADS):
        blocks = union_block_dims(union)
    head = build_head(
        clf,
        n_features=sum(blocks) if pca is not None else None,
        block_sizes=blocks if clf in HISTOGRAM_HEADS | BLOCK_HEADS else None,
        block_names=[name for name, _ in union.transformer_list] if clf in BLOCK_HEADS else None,
        pca=pca,
        class_weight=class_weight,
        n_jobs=n_jobs,
        random_state=random_state,
        clf_params=clf_params,
    )
    return Pipeline([("features", union), *head.steps], memory=memory)


def build_head(
    clf: str = DEFAULT_CLASSIFIER,
    *,
    n_features: int | None = None,
    block_sizes: list[int] | None = None,
    block_names: list[str] | None = None,
    pca: int | None = DEFAULT_PCA,
    class_weight: str | None = None,
    n_jobs: int | None = None,
    random_state: int = 0,
    clf_params: dict | None = None,
) -> Pipeline:
    """The part of a feature pipeline after extraction: scaling → PCA → classifier.

    :func:`build_pipeline` puts a :class:`~sklearn.pipeline.FeatureUnion` in front of it;
    ``fer benchmark`` fits it on cached feature matrices, so both train the same head.

    Parameters
    ----------
    clf : str, default='svm'
        A feature-pipeline head (not an end-to-end one such as ``cnn``).
    n_features : int, optional
        Length of the feature vectors; when it is known and not above ``pca``, PCA is left out.
    block_sizes : list of int, optional
        Columns of each extractor's block, for the histogram-kernel heads (``chi2-svm``,
        ``intersection-svm``), which normalise each block and take no scaling or PCA, and
        for ``stacked-svm``.
    block_names : list of str, optional
        The extractor of each block (``['hog', 'sift-bovw']``), for ``stacked-svm``, which
        gives the bag of visual words a linear branch and the other blocks an RBF one, each
        with its own scaling and PCA.
    pca, class_weight, n_jobs, random_state, clf_params
        As in :func:`build_pipeline`.

    Returns
    -------
    Pipeline
        Steps ``scale`` (StandardScaler), ``pca`` (PCA or ``'passthrough'``) and ``clf``; it
        takes ``X`` of shape ``(n_samples, n_features)``, float. For a histogram-kernel head
        ``scale`` and ``pca`` are ``'passthrough'``: its own first step normalises and maps the
        histograms (:class:`~fer_features.heads.kernels.HistogramKernelMap`).

    Raises
    ------
    ValueError
        For an unknown or end-to-end classifier, or a bad parameter.
    """
    if clf in END_TO_END:
        raise ValueError(f"the {clf} classifier learns from the pixels and has no feature head")
    if clf in HISTOGRAM_HEADS | BLOCK_HEADS:  # they take the raw blocks: no scaling or PCA in front
        if clf in HISTOGRAM_HEADS:
            params = {"block_sizes": block_sizes}
        elif block_names is None or block_sizes is None or len(block_names) != len(block_sizes):
            raise ValueError(f"the {clf} classifier needs the name and size of each feature block")
        else:
            params = {"blocks": list(zip(block_names, block_sizes)), "pca": pca}
        params = {**params, **(clf_params or {})}  # a --clf-param wins
        head = make_classifier(clf, class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **params)
        return Pipeline([("scale", "passthrough"), ("pca", "passthrough"), ("clf", head)])
    head = make_classifier(clf, class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **(clf_params or {}))
    reducer = "passthrough"
    if pca is not None:
        if int(pca) < 1:
            raise ValueError(f"pca must be a positive number of components or None, got {pca!r}")
        if n_features is None or n_features > pca:
            reducer = PCA(n_components=int(pca), random_state=random_state)
    return Pipeline([("scale", StandardScaler()), ("pca", reducer), ("clf", head)])


def cap_pca(pipe: Pipeline, n_fit: int) -> Pipeline:
    """Lower a pipeline's PCA to ``n_fit`` components if it asks for more.

    PCA keeps at most as many components as it has images to fit on, which a small subset (or
    the smallest training fold of a cross-validation) can fall under.

    Parameters
    ----------
    pipe : Pipeline
        From :func:`build_pipeline` or :func:`build_head`; changed in place.
    n_fit : int
        Images the PCA will be fitted on.

    Returns
    -------
    Pipeline
        ``pipe``.
    """
    reducer = pipe.named_steps.get("pca")
    if reducer not in (None, "passthrough") and reducer.n_components > n_fit:
        pipe.set_params(pca__n_components=n_fit)
    from sklearn.ensemble import StackingClassifier

    head = pipe.named_steps.get("clf")
    if isinstance(head, StackingClassifier):  # its branches' PCA, fitted on cv-1 of cv folds first
        inner = n_fit * (head.cv - 1) // head.cv if isinstance(head.cv, int) else n_fit
        for key, value in pipe.get_params(deep=True).items():
            if key.startswith("clf__") and isinstance(value, PCA) and value.n_components > inner:
                pipe.set_params(**{f"{key}__n_components": max(1, inner)})
    return pipe

"""Feature extractors for face crops, and the registry that composes them.

Every extractor is a scikit-learn transformer from ``(n_samples, height, width)`` uint8 face
crops to ``(n_samples, n_features)`` float32. A feature *spec* such as ``"hog+lbp+landmarks"``
names several; :func:`make_features` turns it into one :class:`~sklearn.pipeline.FeatureUnion`.

New extractors register themselves in :data:`FEATURES` (:func:`register_feature`); the CLI
lists and parses whatever is registered, and the skops trust list takes their types from it, so
adding one needs no change elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from sklearn.base import TransformerMixin
from sklearn.pipeline import FeatureUnion

from fer_features.features.base import FaceImageTransformer, check_images
from fer_features.features.hog import HOGFeatures
from fer_features.features.landmarks import LandmarkFeatures
from fer_features.features.lbp import LBPFeatures
from fer_features.features.sift_bovw import SIFTBoVW
from fer_features.features.sift_fisher import SIFTFisherVector
from fer_features.registry import Registry

#: The feature extractors by name: factory ``(n_jobs=..., **params) -> transformer``, description,
#: tags (``"needs a checkpoint"``: a trained CNN, which ``fer train`` trains first when none is
#: given) and the project types a fitted one holds.
FEATURES = Registry("feature")


def register_feature(
    name: str,
    factory: Callable[..., TransformerMixin] | str,
    description: str,
    *,
    tags: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
    requires: str | None = None,
) -> None:
    """Make a feature extractor available by name in specs like ``"hog+NAME"``.

    Parameters
    ----------
    name : str
        Lower-case name without ``+``.
    factory : callable or str
        Called as ``factory(n_jobs=..., **params)``; returns an unfitted transformer. A string
        ``"package.module:Class"`` is imported only when the feature is first built, so
        registering it costs nothing (this is how the torch-based features are registered).
    description : str
        One line for ``fer list`` and error messages.
    tags : tuple of str, optional
        Kinds of the extractor (:class:`~fer_features.registry.Entry`).
    types : tuple of str, optional
        Project types its fitted transformer holds beyond its own class (the skops trust list).
    requires : {None, 'torch'}, optional
        Checked before the factory is imported, for a clear ``pip install`` hint.

    Raises
    ------
    ValueError
        If the name is malformed.
    """
    if not name or "+" in name or name != name.lower():
        raise ValueError(f"feature name must be lower-case without '+', got {name!r}")
    FEATURES.register(name, factory, description, tags=tags, types=types, requires=requires)


def list_features() -> dict[str, str]:
    """Registered feature names and their one-line descriptions."""
    return FEATURES.describe()


def parse_spec(spec: str) -> list[str]:
    """Split ``"hog+lbp"`` into names, checking each is registered.

    Raises
    ------
    ValueError
        If the spec is empty, repeats a name, or names an unknown feature (the message lists
        the valid ones).
    """
    names = [part.strip().lower() for part in str(spec).split("+")]
    if not spec or any(not n for n in names):
        raise ValueError(f"empty feature name in {spec!r}; write names joined by '+', e.g. hog+lbp")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(
            f"unknown feature(s) {', '.join(map(repr, unknown))} in {spec!r}; "
            f"valid names: {', '.join(FEATURES)} (join several with '+')"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"feature spec {spec!r} names a feature twice")
    return names


def make_features(spec: str | Sequence[str], *, n_jobs: int | None = None, params: dict[str, dict] | None = None) -> FeatureUnion:
    """Build the feature extractor for a spec.

    Parameters
    ----------
    spec : str or sequence of str
        Registered names joined by ``+``, e.g. ``"hog+lbp+landmarks"``; or the names
        :func:`parse_spec` gave for it (not parsed again).
    n_jobs : int, optional
        Passed to each extractor (parallel over images); ``-1`` uses all cores.
    params : dict of {name: dict}, optional
        Extra constructor parameters per feature, e.g. ``{"hog": {"orientations": 12}}``.

    Returns
    -------
    FeatureUnion
        One named step per feature (``hog``, ``lbp``, …), concatenated column-wise; even a
        single feature is wrapped, so column names are always ``{name}__{column}``.

    Raises
    ------
    ValueError
        See :func:`parse_spec`; also if ``params`` names a feature not in the spec.
    """
    names = parse_spec(spec) if isinstance(spec, str) else list(spec)
    params = dict(params or {})
    extra = set(params) - set(names)
    if extra:
        raise ValueError(f"parameters given for {', '.join(sorted(extra))}, which is not in {'+'.join(names)!r}")
    steps = []
    for n in names:
        factory = FEATURES.factory(n)
        try:
            steps.append((n, factory(n_jobs=n_jobs, **params.get(n, {}))))
        except TypeError as exc:  # an unknown keyword: name the feature and its valid parameters
            valid = sorted(set(factory(n_jobs=n_jobs).get_params()) - {"n_jobs"})
            raise ValueError(f"bad parameter for feature {n!r} ({exc}); its parameters: {', '.join(valid)}") from None
    return FeatureUnion(steps)


def parse_features(spec: str | None, params: dict[str, dict] | Sequence[str] | None = None) -> tuple[list[str], dict[str, dict]]:
    """A feature spec and its parameters, parsed together: the names and ``{name: {param: value}}``.

    Parameters
    ----------
    spec : str or None
        Names joined by ``+`` (:func:`parse_spec`); None for no features (an end-to-end head).
    params : dict of {name: dict} or sequence of str, optional
        Extractor parameters as a dict, or as the ``NAME.PARAM=VALUE`` strings of
        ``--feature-param`` (:func:`parse_feature_params`).

    Returns
    -------
    names : list of str
    params : dict of {name: dict}
        A new dict.

    Raises
    ------
    ValueError
        See :func:`parse_spec` and :func:`parse_feature_params`.
    """
    names = parse_spec(spec) if spec is not None else []
    if params is None or isinstance(params, dict):
        return names, {k: dict(v) for k, v in (params or {}).items()}
    return names, parse_feature_params(list(params))


def make_checked_features(
    names: Sequence[str], *, n_jobs: int | None = None, params: dict[str, dict] | None = None
) -> tuple[FeatureUnion, list[int]]:
    """:func:`make_features`, checked: a copy of each extractor is fitted on one blank crop.

    The copy's fit runs the extractor's parameter checks (and loads a CNN's checkpoint) before
    any data is read, and gives the width of its block, so nothing is read again for it.
    Warnings are silenced: a learning extractor (``sift-fisher``'s PCA and mixture,
    ``sift-bovw``'s k-means) fitted on one flat image warns of degenerate data that the real fit
    does not see.

    Parameters
    ----------
    names : sequence of str
        From :func:`parse_spec`.
    n_jobs, params
        As in :func:`make_features`.

    Returns
    -------
    union : FeatureUnion
        Unfitted.
    widths : list of int
        The width of each extractor's block, in spec order.

    Raises
    ------
    ValueError, FileNotFoundError
        For a bad parameter, or a missing CNN checkpoint or weights file.
    """
    import warnings

    import numpy as np
    from sklearn.base import clone

    from fer_features.config import IMAGE_SIZE

    union = make_features(names, n_jobs=n_jobs, params=params)
    blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted_union = clone(union).fit(blank)
    widths = []
    for _, fitted in fitted_union.transformer_list:
        if hasattr(fitted, "feature_dims"):
            widths.append(int(fitted.feature_dims((IMAGE_SIZE, IMAGE_SIZE))))
        else:
            widths.append(len(fitted.get_feature_names_out()))
    return union, widths


def parse_feature_params(items: list[str], option: str = "--feature-param") -> dict[str, dict]:
    """``["hog.orientations=12"]`` → ``{"hog": {"orientations": 12}}``; values are JSON if they parse.

    Parameters
    ----------
    items : list of str
        ``NAME.PARAM=VALUE`` each (``fer train --feature-param``); a JSON list becomes a tuple.
    option : str, default='--feature-param'
        The option the items came from, named in the error (``fer benchmark --clf-param`` parses
        classifier parameters the same way).

    Returns
    -------
    dict of {name: dict}

    Raises
    ------
    ValueError
        For an item not of that form.
    """
    params: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, param = key.partition(".")
        if not (sep and dot and name and param):
            example = "svm.C=20" if option == "--clf-param" else "hog.orientations=12"
            raise ValueError(f"{option} {item!r}: expected NAME.PARAM=VALUE, e.g. {example}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params.setdefault(name.strip().lower(), {})[param.strip()] = tuple(value) if isinstance(value, list) else value
    return params


register_feature("hog", HOGFeatures, "HOG, 9 orientations in 6x6-pixel cells (Dalal & Triggs 2005)")
register_feature("lbp", LBPFeatures, "uniform LBP(8,1) histograms over a 6x6 grid (Ojala et al. 2002)")
register_feature("landmarks", LandmarkFeatures, "dlib 68-point landmarks, normalised, plus 20 distances and angles")
register_feature(
    "sift-bovw", SIFTBoVW,
    "dense SIFT bag of 512 visual words, spatial pyramid 1+2x2+4x4 (Lazebnik 2006); vocabulary fitted on Training",
)  # fmt: skip
register_feature(
    "sift-fisher", SIFTFisherVector,
    "dense SIFT Fisher vectors, 64 Gaussians on PCA-64 descriptors, pyramid 1+2x2 (Perronnin 2010); fitted on Training",
)  # fmt: skip
register_feature(
    "dlib-resnet", "fer_features.features.dlib_resnet:DlibResNetEmbedding",
    "dlib's 128-d ResNet face descriptor (slow on CPU: cache it)",
)  # fmt: skip
register_feature(
    "vgg16", "fer_features.features.vgg16:VGG16Features",
    "ImageNet VGG16 bottleneck from a local torchvision weights file (--weights)",
    requires="torch",
)  # fmt: skip
register_feature(
    "cnn", "fer_features.features.cnn:CNNEmbedding",
    "embedding (penultimate layer) of a CNN trained on FER2013 (needs its checkpoint)",
    tags=("needs a checkpoint",), requires="torch",
)  # fmt: skip

__all__ = [
    "FEATURES",
    "FaceImageTransformer",
    "HOGFeatures",
    "LBPFeatures",
    "LandmarkFeatures",
    "SIFTBoVW",
    "SIFTFisherVector",
    "check_images",
    "list_features",
    "make_checked_features",
    "make_features",
    "parse_feature_params",
    "parse_features",
    "parse_spec",
    "register_feature",
]

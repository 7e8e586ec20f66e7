"""Feature extractors for face crops, and the registry that composes them.

Every extractor is a scikit-learn transformer from ``(n_samples, height, width)`` uint8 face
crops to ``(n_samples, n_features)`` float32. A feature *spec* such as ``"hog+lbp+landmarks"``
names several; :func:`make_features` turns it into one :class:`~sklearn.pipeline.FeatureUnion`.

New extractors register themselves with :func:`register_feature`; the CLI lists and parses
whatever is registered, so adding one needs no change there.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import TransformerMixin
from sklearn.pipeline import FeatureUnion

from fer_features.features.base import FaceImageTransformer, check_images
from fer_features.features.hog import HOGFeatures
from fer_features.features.landmarks import LandmarkFeatures
from fer_features.features.lbp import LBPFeatures
from fer_features.features.sift_bovw import SIFTBoVW

# name -> (factory(n_jobs, **params) -> transformer, one-line description)
_REGISTRY: dict[str, tuple[Callable[..., TransformerMixin], str]] = {}


def register_feature(name: str, factory: Callable[..., TransformerMixin], description: str) -> None:
    """Make a feature extractor available by name in specs like ``"hog+NAME"``.

    Parameters
    ----------
    name : str
        Lower-case name without ``+``.
    factory : callable
        Called as ``factory(n_jobs=..., **params)``; returns an unfitted transformer.
    description : str
        One line for ``fer features`` and error messages.

    Raises
    ------
    ValueError
        If the name is malformed.
    """
    if not name or "+" in name or name != name.lower():
        raise ValueError(f"feature name must be lower-case without '+', got {name!r}")
    _REGISTRY[name] = (factory, description)


def list_features() -> dict[str, str]:
    """Registered feature names and their one-line descriptions."""
    return {name: desc for name, (_, desc) in _REGISTRY.items()}


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
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown feature(s) {', '.join(map(repr, unknown))} in {spec!r}; "
            f"valid names: {', '.join(_REGISTRY)} (join several with '+')"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"feature spec {spec!r} names a feature twice")
    return names


def make_features(spec: str, *, n_jobs: int | None = None, params: dict[str, dict] | None = None) -> FeatureUnion:
    """Build the feature extractor for a spec.

    Parameters
    ----------
    spec : str
        Registered names joined by ``+``, e.g. ``"hog+lbp+landmarks"``.
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
    names = parse_spec(spec)
    params = dict(params or {})
    extra = set(params) - set(names)
    if extra:
        raise ValueError(f"parameters given for {', '.join(sorted(extra))}, which is not in {spec!r}")
    steps = []
    for n in names:
        try:
            steps.append((n, _REGISTRY[n][0](n_jobs=n_jobs, **params.get(n, {}))))
        except TypeError as exc:  # an unknown keyword: name the feature and its valid parameters
            valid = sorted(set(_REGISTRY[n][0](n_jobs=n_jobs).get_params()) - {"n_jobs"})
            raise ValueError(f"bad parameter for feature {n!r} ({exc}); its parameters: {', '.join(valid)}") from None
    return FeatureUnion(steps)


def _cnn_embedding(**params):
    from fer_features.cnn import require_torch

    require_torch("the cnn feature")
    from fer_features.cnn.estimators import CNNEmbedding  # imports torch: only when asked for

    return CNNEmbedding(**params)


register_feature("hog", HOGFeatures, "HOG, 9 orientations in 6x6-pixel cells (Dalal & Triggs 2005)")
register_feature("lbp", LBPFeatures, "uniform LBP(8,1) histograms over a 6x6 grid (Ojala et al. 2002)")
register_feature(
    "sift-bovw",
    SIFTBoVW,
    "dense SIFT bag of 512 visual words, spatial pyramid 1+2x2+4x4 (Lazebnik 2006); vocabulary fitted on Training",
)
register_feature(
    "landmarks", LandmarkFeatures, "dlib 68-point landmarks, normalised, plus 20 distances and angles"
)
def _vgg16(**params):
    from fer_features.cnn import require_torch

    require_torch("the vgg16 feature")
    from fer_features.features.vgg16 import VGG16Features

    return VGG16Features(**params)


def _dlib_resnet(**params):
    from fer_features.features.dlib_resnet import DlibResNetEmbedding

    return DlibResNetEmbedding(**params)


register_feature("dlib-resnet", _dlib_resnet, "dlib's 128-d ResNet face descriptor (slow on CPU: cache it)")
register_feature("vgg16", _vgg16, "ImageNet VGG16 bottleneck from a local torchvision weights file (--weights)")
register_feature("cnn", _cnn_embedding, "embedding (penultimate layer) of a CNN trained on FER2013 (needs its checkpoint)")

__all__ = [
    "FaceImageTransformer",
    "HOGFeatures",
    "LBPFeatures",
    "LandmarkFeatures",
    "SIFTBoVW",
    "check_images",
    "list_features",
    "make_features",
    "parse_spec",
    "register_feature",
]

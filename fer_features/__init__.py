"""fer-features: facial expression recognition with hand-crafted and learned features.

The package is a set of scikit-learn transformers and pipelines for classifying the
emotion on a face crop (FER2013 protocol: 7 classes, 48x48 grey crops), plus face
detection and alignment for ordinary photos, and a Typer CLI (``fer``).

>>> from fer_features import Recognizer                 # doctest: +SKIP
>>> Recognizer().predict("photo.jpg")                     # a DataFrame, one row per face  # doctest: +SKIP

Importing the package is cheap: :class:`Recognizer` and :func:`train` are imported on first
use, and torch and dlib only where they are needed. Importing it sets ``OMP_WAIT_POLICY=PASSIVE``
unless the environment sets it (:mod:`fer_features.threads`): idle OpenMP threads then sleep
instead of spinning, which keeps the models fast when another process holds a core.
"""

from fer_features import threads

threads.sleep_when_idle()  # before torch, yuface or scikit-learn load OpenMP: see fer_features.threads

from fer_features.config import EMOTIONS, USAGES

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)

_LAZY = {"Recognizer": "fer_features.recognizer", "train": "fer_features.training", "ModelCard": "fer_features.training"}


def __getattr__(name):  # PEP 562: `from fer_features import Recognizer` imports it then
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EMOTIONS", "USAGES", "ModelCard", "Recognizer", "__version__", "train"]  # noqa: F822

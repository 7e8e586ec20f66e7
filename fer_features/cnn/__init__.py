"""Learned features: a CNN trained on face crops, its embeddings, and the end-to-end baseline.

Importing the submodules imports torch; this package's ``__init__`` and the rest of
fer_features do not, so ``fer --help`` stays fast and torch stays optional.
"""

from fer_features.torch_utils import require_torch, resolve_device  # noqa: F401  (torch imported on use)


def __getattr__(name):  # lazy: `from fer_features.cnn import CNNEmbedding` imports torch then
    import importlib

    for sub in ("presets", "estimators", "net", "train"):
        module = importlib.import_module(f"{__name__}.{sub}")
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: F822  (resolved lazily by __getattr__)
    "PRESETS",
    "CNNClassifier",
    "CNNEmbedding",
    "CNNEnsembleClassifier",
    "FERNet",
    "TrainConfig",
    "load_checkpoint",
    "require_torch",
    "resolve_device",
    "save_checkpoint",
    "train_cnn",
]

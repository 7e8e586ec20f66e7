"""Learned features: a CNN trained on face crops, its embeddings, and the end-to-end baseline.

Importing the submodules imports torch; this package's ``__init__`` and the rest of
fer_features do not, so ``fer --help`` stays fast and torch stays optional.
"""

import importlib.util


def require_torch(what: str) -> None:
    """Raise ImportError with the install command if PyTorch is missing."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"{what} needs PyTorch, which is not installed: `pip install torch==2.13.0` "
            "(the CPU build pinned in requirements.lock), or `pip install fer-features[cnn]`"
        )


def __getattr__(name):  # lazy: `from fer_features.cnn import CNNEmbedding` imports torch then
    import importlib

    for sub in ("estimators", "net", "train"):
        module = importlib.import_module(f"{__name__}.{sub}")
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: F822  (resolved lazily by __getattr__)
    "PRESETS",
    "CNNClassifier",
    "CNNEmbedding",
    "FERNet",
    "TrainConfig",
    "load_checkpoint",
    "require_torch",
    "resolve_device",
    "save_checkpoint",
    "train_cnn",
]

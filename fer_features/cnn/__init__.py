"""Learned features: a CNN trained on face crops, its embeddings, and the end-to-end baseline.

Importing this package imports torch; the rest of fer_features does not.
"""

from fer_features.cnn.estimators import CNNClassifier, CNNEmbedding
from fer_features.cnn.net import PRESETS, FERNet, resolve_device
from fer_features.cnn.train import TrainConfig, load_checkpoint, save_checkpoint, train_cnn

__all__ = [
    "PRESETS",
    "CNNClassifier",
    "CNNEmbedding",
    "FERNet",
    "TrainConfig",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train_cnn",
]

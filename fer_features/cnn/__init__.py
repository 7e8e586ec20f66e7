"""The CNN: network, training recipe and loop, checkpoints, model soups, int8 inference, ensembles.

* :mod:`~fer_features.cnn.presets`: the network sizes by name (no torch);
* :mod:`~fer_features.cnn.net`: :class:`~fer_features.cnn.net.FERNet`;
* :mod:`~fer_features.cnn.recipe`: :class:`~fer_features.cnn.recipe.TrainConfig`, augmentation,
  mixing, loss, test-time views;
* :mod:`~fer_features.cnn.loop`: :func:`~fer_features.cnn.loop.train_cnn`, the training loop;
* :mod:`~fer_features.cnn.checkpoints`: saving, reading and rebuilding a trained network;
* :mod:`~fer_features.cnn.soup`: fine-tunes of one network averaged (model soups, uniform or greedy);
* :mod:`~fer_features.cnn.classifier`: :class:`~fer_features.cnn.classifier.CNNClassifier`, the
  end-to-end head (its embedding, the ``cnn`` feature, is :mod:`fer_features.features.cnn`);
* :mod:`~fer_features.cnn.ensemble`: several trained networks as one head;
* :mod:`~fer_features.cnn.int8`: int8 inference.

Importing the submodules (but :mod:`~fer_features.cnn.presets`) imports torch; this package's
``__init__`` and the rest of fer_features do not, so ``fer --help`` stays fast and torch stays
optional.
"""

#: Where each name of this package lives; imported on first use (PEP 562), so torch is imported then.
_HOMES = {
    "PRESETS": "fer_features.cnn.presets",
    "FERNet": "fer_features.cnn.net",
    "TrainConfig": "fer_features.cnn.recipe",
    "train_cnn": "fer_features.cnn.loop",
    "load_checkpoint": "fer_features.cnn.checkpoints",
    "save_checkpoint": "fer_features.cnn.checkpoints",
    "CNNClassifier": "fer_features.cnn.classifier",
    "CNNEnsembleClassifier": "fer_features.cnn.ensemble",
    "CNNEmbedding": "fer_features.features.cnn",
}


def __getattr__(name):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_HOMES)

"""Persistence: model files (skops, or joblib pickles), the types they may hold, model cards, safe outputs.

* :mod:`~fer_features.persist.files`: :func:`save_model` and :func:`load_model`, which refuses
  pickles by default and skops files holding types outside the trust list, and checks what it
  loaded is a fer-features pipeline (:func:`open_model`: the same, and where the model came from);
* :mod:`~fer_features.persist.bundled`: the models shipped in the package, and what a model
  argument names (:func:`resolve_model`);
* :mod:`~fer_features.persist.trust`: that trust list, derived from the registries, and the
  type paths of files saved by earlier versions;
* :mod:`~fer_features.persist.cards`: the model card written beside a model (``NAME.json``);
* :mod:`~fer_features.persist.outputs`: outputs checked writable first, written to temporary
  names and moved into place together.
"""

from fer_features.persist.bundled import resolve_model
from fer_features.persist.cards import ModelCard, card_path, read_card
from fer_features.persist.files import (
    LoadedModel,
    ModelError,
    UnsafeModelError,
    check_pipeline,
    load_model,
    model_format,
    open_model,
    save_model,
)
from fer_features.persist.outputs import OutputError, atomic_path, check_writable, staged_outputs
from fer_features.persist.trust import trusted_types

__all__ = [
    "LoadedModel",
    "ModelCard",
    "ModelError",
    "OutputError",
    "UnsafeModelError",
    "atomic_path",
    "card_path",
    "check_pipeline",
    "check_writable",
    "load_model",
    "model_format",
    "open_model",
    "read_card",
    "resolve_model",
    "save_model",
    "staged_outputs",
    "trusted_types",
]

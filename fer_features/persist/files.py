"""Saving and loading trained pipelines: skops (or joblib) files with a JSON model card beside them.

Two formats, chosen by the file's suffix when saving and by its content when loading:

* ``.skops`` (the default; :mod:`skops.io`): a zip of JSON and numpy arrays. Loading builds
  only the types of :func:`trusted_types` (the project's estimators and the scikit-learn
  types its pipelines use, taken from the registries of features and heads) and refuses a file naming any other type,
  so a model file from elsewhere cannot run code.
* ``.joblib`` (or ``.pkl``): a pickle. Loading a pickle runs whatever code its author put in
  it, so :func:`load_model` refuses one unless ``trusted=True`` (``--trust-pickle``): only for
  files you made yourself.

A loaded model is also checked to be a fer-features pipeline (input 48x48 face crops, emotion
classes, a trial prediction) before anything uses it.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fer_features.config import (
    BUNDLED_MODELS,
    CHECKPOINT_SUFFIX,
    DEFAULT_DATA,
    DEFAULT_TRAIN_OUT,
)
from fer_features.persist.bundled import bundled_name, resolve_model
from fer_features.persist.cards import card_path, library_versions
from fer_features.persist.outputs import staged_outputs
from fer_features.persist.trust import current_type_paths, skops_io, trusted_types

#: Suffixes saved as pickles with joblib; every other suffix is saved with skops.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class ModelError(ValueError):
    """A model file is missing, unreadable or not a fer-features pipeline."""


class UnsafeModelError(ModelError):
    """A model file that loading would have to trust: a pickle, or a skops file with unknown types."""


def model_format(path: str | os.PathLike) -> str:
    """``'skops'`` for a skops file (a zip), else ``'pickle'`` (joblib or plain pickle), judged by content.

    Raises
    ------
    ModelError
        If the file is missing or cannot be read.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    return "skops" if head == b"PK\x03\x04" else "pickle"


def save_model(model, path: str | Path, card=None, *, extras: dict | None = None) -> Path:
    """Write a fitted pipeline, its card and the run's other files, all moved into place together.

    Parameters
    ----------
    model : fitted estimator
    path : str or Path
        Target file; folders are created. A ``.joblib``, ``.pkl`` or ``.pickle`` suffix writes
        a pickle with joblib (only for scripts that load their own files: :func:`load_model`
        refuses pickles by default); any other suffix (``.skops`` by convention) writes
        :mod:`skops.io`'s format, which loads without running code.
    card : ModelCard or dict, optional
        The model card (:class:`fer_features.persist.cards.ModelCard`, or any JSON-serialisable
        dict), written to :func:`card_path` with ``format`` and ``library_versions`` added (to
        a ModelCard too).
    extras : dict of {path: callable or bytes}, optional
        Other files of the run (plots, checkpoints), moved onto their keys with the model (see
        :func:`staged_outputs`): a callable is called with a temporary path to write, bytes are
        written as they are.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    skops.io.exceptions.UnsupportedTypeException
        If skops cannot save a type in the model (save it with a ``.joblib`` suffix instead).
    """
    path = Path(path)
    fmt = "pickle" if path.suffix.lower() in PICKLE_SUFFIXES else "skops"
    with staged_outputs() as stage:
        tmp = stage.path(path)
        if fmt == "skops":
            sio = skops_io()
            sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        else:
            import joblib

            joblib.dump(model, tmp, compress=3)
        if card is not None:
            if hasattr(card, "to_dict"):  # a ModelCard
                card.format, card.library_versions = fmt, library_versions()
                card = card.to_dict()
            else:
                card = {**card, "format": fmt, "library_versions": library_versions()}
            stage.path(card_path(path)).write_text(json.dumps(card, indent=2, default=str) + "\n")
        for target, content in (extras or {}).items():
            if isinstance(content, bytes):
                stage.path(target).write_bytes(content)
            else:
                content(stage.path(target))
    return path


def load_model(path: str | Path | None = None, *, trusted: bool = False, tta=False, precision: str = "auto"):
    """Load a fer-features pipeline saved by :func:`save_model`, or a CNN checkpoint, refusing files that could run code.

    Parameters
    ----------
    path : str or Path, optional
        A model file, or the name of a bundled model (``'default'``, ``'accurate'``: see
        :func:`fer_features.persist.bundled.resolve_model`); defaults to
        :func:`~fer_features.persist.bundled.default_model_path`
        (``$FER_MODEL``, else the bundled ``default``). The format is read from the content. A ``.pt``
        file is a CNN checkpoint (``fer train --clf cnn``; tensors only, read with
        ``torch.load(weights_only=True)``), loaded as :meth:`CNNClassifier.from_checkpoint
        <fer_features.cnn.classifier.CNNClassifier.from_checkpoint>`.
    trusted : bool, default=False
        Allow a pickle-based file (joblib). Unpickling runs any code the file's author put in it:
        pass True only for files you made yourself. skops files never need it.
    tta : {False, True, 'flip', 'ten-crop'}, default=False
        CNN checkpoint only: test-time augmentation.
    precision : {'auto', 'bf16', 'fp32'}, default='auto'
        CNN checkpoint only: inference arithmetic.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Takes ``(n, 48, 48)`` uint8 face crops; has ``predict_proba`` and emotion ``classes_``.

    Raises
    ------
    UnsafeModelError
        For a pickle without ``trusted=True`` (the message says why and what to do), or a skops
        file holding types outside :func:`trusted_types` (the message names them).
    ModelError
        If the file is missing (the message says how to train one), unreadable, or holds
        something that is not a fer-features pipeline (see :func:`check_pipeline`).
    """
    return open_model(path, trusted=trusted, tta=tta, precision=precision).model


@dataclass(frozen=True)
class LoadedModel:
    """A model read by :func:`open_model`, and where it came from.

    Attributes
    ----------
    model : sklearn.pipeline.Pipeline
        Checked (:func:`check_pipeline`); takes ``(n, 48, 48)`` uint8 face crops.
    path : Path
        The file read (a bundled model's name resolved by
        :func:`~fer_features.persist.bundled.resolve_model`).
    format : {'skops', 'pickle', 'checkpoint'}
        How it was read.
    bundled : str or None
        The bundled model's name (``'default'``) when the file is one of the package's.
    """

    model: object
    path: Path
    format: str
    bundled: str | None = None


def open_model(model: str | Path | None = None, *, trusted: bool = False, tta=False, precision: str = "auto") -> LoadedModel:
    """:func:`load_model`, and where the model came from: its file, format and bundled name.

    The model argument is resolved once, here: ``fer predict`` and :class:`~fer_features.Recognizer`
    say which file they read without resolving it again.

    Parameters
    ----------
    model : str or Path, optional
        As ``path`` in :func:`load_model`.
    trusted, tta, precision
        As in :func:`load_model`.

    Returns
    -------
    LoadedModel

    Raises
    ------
    UnsafeModelError, ModelError
        As :func:`load_model`.
    """
    path = resolve_model(model)
    if path.suffix == CHECKPOINT_SUFFIX:
        from fer_features.cnn.classifier import CNNClassifier

        try:
            return LoadedModel(CNNClassifier.from_checkpoint(path, tta=tta, precision=precision), path, "checkpoint")
        except (ValueError, FileNotFoundError) as exc:
            raise ModelError(str(exc)) from None
    if not path.is_file():
        raise ModelError(
            f"{path}: no such model file; the bundled models are {', '.join(BUNDLED_MODELS)} (`fer models` lists them "
            f"with any in ./models), or train one with `fer train --data {DEFAULT_DATA} --out {DEFAULT_TRAIN_OUT}`"
        )
    fmt = model_format(path)
    if fmt == "skops":
        pipe = _load_skops(path)
    else:
        if not trusted:
            raise UnsafeModelError(
                f"{path}: a pickle-based (joblib) model file; loading it would run any code its author put in it, "
                "so it is refused. Load only files you made yourself: pass --trust-pickle (trusted=True), "
                "or train again with --out NAME.skops"
            )
        import joblib

        try:
            pipe = joblib.load(path)
        except Exception as exc:  # joblib/pickle raise many types for a bad file
            raise ModelError(f"{path}: not a readable model file ({exc.__class__.__name__}: {exc})") from None
    check_pipeline(pipe, path)
    return LoadedModel(pipe, path, fmt, bundled_name(path))


def _load_skops(path: Path):
    sio = skops_io()
    try:
        data = current_type_paths(path.read_bytes())  # a file saved before the sub-packages loads too
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a broken zip or schema
        raise ModelError(f"{path}: not a readable skops model file ({exc.__class__.__name__}: {exc})") from None
    unknown = sorted(set(found) - trusted_types())
    if unknown:
        raise UnsafeModelError(
            f"{path}: refused: it holds types that are neither fer-features' nor the scikit-learn/numpy ones its "
            f"pipelines use, and loading would build them: {', '.join(unknown)}"
        )
    try:
        return sio.loads(data, trusted=found)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable skops model file ({exc.__class__.__name__}: {exc})") from None


def check_pipeline(model, path: str | os.PathLike = "model") -> None:
    """Check that a loaded object is a fitted fer-features pipeline, so that it fails here, not later.

    Parameters
    ----------
    model : object
    path : str or path-like, default='model'
        Names the file in the message.

    Raises
    ------
    ModelError
        One line: not a fitted classifier; classes that are not emotion names; a first step
        that does not take face crops (another scikit-learn classifier); or a trial prediction
        on one blank 48x48 crop that fails or gives the wrong shape.
    """
    import numpy as np
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.utils import get_tags

    from fer_features.config import EMOTIONS8, IMAGE_SIZE

    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a fitted classifier pipeline")
    if not isinstance(model, Pipeline):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a fer-features Pipeline (features → classifier)")
    classes = [str(c) for c in np.asarray(model.classes_).ravel()]
    unknown = [c for c in classes if c not in EMOTIONS8]
    if unknown:
        raise ModelError(
            f"{path}: not a fer-features model: its classes {unknown[:5]} are not emotion names ({', '.join(EMOTIONS8)})"
        )
    first = model.steps[0][1]
    parts = [t for _, t in first.transformer_list] if isinstance(first, FeatureUnion) else [first]
    takes_images = [p for p in parts if p not in (None, "drop", "passthrough") and get_tags(p).input_tags.three_d_array]
    if not takes_images or len(takes_images) != len(parts):
        names = " → ".join(type(step).__name__ for _, step in model.steps)
        raise ModelError(
            f"{path}: not a fer-features model: its pipeline ({names}) takes feature vectors, not 48x48 face crops"
        )
    crop = np.full((1, IMAGE_SIZE, IMAGE_SIZE), 128, np.uint8)
    try:
        proba = np.asarray(model.predict_proba(crop))
    except Exception as exc:
        raise ModelError(f"{path}: not a usable fer-features model: a 48x48 face crop fails in it ({exc.__class__.__name__}: {exc})") from None
    if proba.shape != (1, len(classes)):
        raise ModelError(f"{path}: not a usable fer-features model: probabilities of shape {proba.shape} for 1 crop and {len(classes)} classes")

"""The models shipped inside the package, and what a model argument names: a bundled model or a file.

Wherever a model is asked for (``fer predict --model``, ``Recognizer(model)``, ``$FER_MODEL``,
:func:`~fer_features.persist.files.load_model`), a bundled model's name (``'default'``,
``'accurate'``: :data:`fer_features.config.BUNDLED_MODELS`) picks the file shipped as package data
and any other value is a path (:func:`resolve_model`). The bundled files are found through
``importlib.resources`` (:func:`bundled_models_dir`), never by a path relative to the working
folder, and no run writes into that folder (:func:`fer_features.persist.outputs.check_writable`).
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_features.config import BUNDLED_MODELS, DEFAULT_MODEL, ENV_MODEL, MODEL_SUFFIX


def bundled_models_dir() -> Path:
    """The folder of the bundled models, inside the installed package (``importlib.resources``)."""
    from importlib.resources import files

    return Path(str(files("fer_features") / "models"))


def bundled_model_path(name: str) -> Path:
    """The model file of a bundled model.

    Parameters
    ----------
    name : {'default', 'accurate'}
        One of :data:`fer_features.config.BUNDLED_MODELS`.

    Raises
    ------
    ValueError
        For a name that is not a bundled model (the message lists them).
    """
    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled model {name!r}; the bundled models are {', '.join(BUNDLED_MODELS)}")
    return bundled_models_dir() / f"{name}{MODEL_SUFFIX}"


def resolve_model(model: str | os.PathLike | None = None) -> Path:
    """The model file a model argument names: a path, or the name of a bundled model.

    A path to an existing file is that file; otherwise a bundled model's name (``'default'``,
    ``'accurate'``) picks the bundled model, and any other value is taken as a path (which
    :func:`~fer_features.persist.files.load_model` then reports missing).

    Parameters
    ----------
    model : str or path-like, optional
        A model file or a bundled model's name; None for :func:`default_model_path`.

    Returns
    -------
    Path
    """
    if model is None:
        return default_model_path()
    text = os.fspath(model)
    if text in BUNDLED_MODELS and not Path(text).is_file():
        return bundled_model_path(text)
    return Path(text)


def default_model_path() -> Path:
    """The model used when none is given: ``$FER_MODEL`` (a path or a bundled model's name), else the bundled ``default``."""
    env = os.environ.get(ENV_MODEL)
    return resolve_model(env) if env else bundled_model_path(DEFAULT_MODEL)


def bundled_name(path: str | os.PathLike) -> str | None:
    """The bundled model's name (``'default'``) when ``path`` is one of the package's model files, else None."""
    path = Path(path)
    return path.stem if path.parent == bundled_models_dir() else None

"""dlib's model files (``face-recognition-models``) and the predictors and detectors loaded from them, once per process."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from fer_features.config import ENV_DLIB_MODELS
from fer_features.extras import import_optional

#: dlib model files shipped by ``face-recognition-models``, by short name.
DLIB_MODELS = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "mmod": "mmod_human_face_detector.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}


def dlib_model_path(name: str) -> Path:
    """Path of a dlib model file shipped by ``face-recognition-models``.

    Parameters
    ----------
    name : {'landmarks68', 'landmarks5', 'mmod', 'resnet'}

    Returns
    -------
    Path
        The file, from ``$FER_FEATURES_DLIB_MODELS`` if set, else from the installed
        ``face_recognition_models`` package.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    FileNotFoundError
        If the file is not there; the message says how to install it.
    """
    if name not in DLIB_MODELS:
        raise ValueError(f"unknown dlib model {name!r}; expected one of {', '.join(DLIB_MODELS)}")
    folder = os.environ.get(ENV_DLIB_MODELS)
    if folder is None:
        # Located without importing the package: its __init__ needs pkg_resources.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"dlib model {DLIB_MODELS[name]} not found: install it with "
                "`pip install 'fer-features[train]'` (face-recognition-models), or set FER_FEATURES_DLIB_MODELS to a folder holding it"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    path = Path(folder) / DLIB_MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib model file {path} is missing: reinstall `face-recognition-models`, "
            "or set FER_FEATURES_DLIB_MODELS to a folder holding it"
        )
    return path


@functools.lru_cache(maxsize=4)
def shape_predictor(path: str | os.PathLike | None = None):
    """The dlib 68-point shape predictor, loaded once per process (``None``: the shipped model)."""
    dlib = import_optional("dlib", "the 68-point landmark predictor")

    return dlib.shape_predictor(str(path or dlib_model_path("landmarks68")))


@functools.lru_cache(maxsize=4)
def face_detector(kind: str = "hog", path: str | os.PathLike | None = None):
    """A dlib face detector, loaded once per process.

    Parameters
    ----------
    kind : {'hog', 'mmod'}, default='hog'
        ``'hog'``: the frontal HOG + linear SVM detector; ``'mmod'``: the MMOD CNN detector [1]_
        (more robust to pose, about 10x slower on a CPU).
    path : path-like, optional
        MMOD model file; defaults to the shipped one.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    ImportError
        If dlib is not installed (``pip install 'fer-features[train]'``).
    """
    dlib = import_optional("dlib", f"the {kind} face detector")

    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "mmod":
        return dlib.cnn_face_detection_model_v1(str(path or dlib_model_path("mmod")))
    raise ValueError(f"unknown dlib face detector {kind!r}; expected 'hog' or 'mmod'")

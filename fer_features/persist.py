"""Saving and loading trained pipelines: atomic joblib files with a JSON model card beside them."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

#: Where ``fer predict`` and ``fer evaluate`` look when no model is given: ``$FER_MODEL``, else this.
DEFAULT_MODEL = Path("models") / "fer-default.joblib"

_LIBRARIES = ("fer-features", "numpy", "scikit-learn", "scikit-image", "dlib-bin", "torch", "joblib", "pillow")


class ModelError(ValueError):
    """A model file is missing, unreadable or not a fer-features pipeline."""


def default_model_path() -> Path:
    """``$FER_MODEL`` if set, else :data:`DEFAULT_MODEL` (relative to the working folder)."""
    return Path(os.environ.get("FER_MODEL", DEFAULT_MODEL))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves an earlier ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def card_path(model_path: str | Path) -> Path:
    """The model card of a model file: same name, ``.json``."""
    return Path(model_path).with_suffix(".json")


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the libraries a model depends on, and Python's.

    Parameters
    ----------
    extra : tuple of str, default=()
        More distribution names to report (e.g. ``("dask", "pandas")``); missing ones are left out.
    """
    versions = {"python": platform.python_version()}
    for name in (*_LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def machine_info() -> dict:
    """Where a measurement was taken, for model cards and benchmark records.

    Returns
    -------
    dict
        ``cpu_count``, ``platform``, ``processor``, ``python``, ``load_average_1min`` (where the
        OS has one: a busy machine shows here) and ``gpu`` when torch is imported and sees CUDA.
    """
    import sys

    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError, AttributeError):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        info["gpu"] = sys.modules["torch"].cuda.get_device_name(0)
    return info


def save_model(model, path: str | Path, card: dict | None = None) -> Path:
    """Write a fitted pipeline with joblib, and its card as JSON, each atomically.

    Parameters
    ----------
    model : fitted estimator
    path : str or Path
        Target ``.joblib`` file; folders are created.
    card : dict, optional
        JSON-serialisable description (features, metrics, timings …), written to
        :func:`card_path` with ``library_versions`` added.

    Returns
    -------
    Path
        ``path``.
    """
    import joblib

    path = Path(path)
    with atomic_path(path) as tmp:
        joblib.dump(model, tmp, compress=3)
    if card is not None:
        card = {**card, "library_versions": library_versions()}
        with atomic_path(card_path(path)) as tmp:
            tmp.write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path


def load_model(path: str | Path | None = None):
    """Load a pipeline saved by :func:`save_model` (or any joblib-pickled classifier).

    Parameters
    ----------
    path : str or Path, optional
        Defaults to :func:`default_model_path`.

    Returns
    -------
    estimator
        With ``predict`` and ``classes_``.

    Raises
    ------
    ModelError
        If the file is missing (the message says how to train one), unreadable, or holds
        something that is not a fitted classifier.
    """
    import joblib

    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(
            f"{path}: no such model file; train one with "
            f"`fer train --data ../shared/data/fer2013.csv.gz --out {path}` (or `make run`)"
        )
    try:
        model = joblib.load(path)
    except Exception as exc:  # joblib/pickle raise many types for a bad file
        raise ModelError(f"{path}: not a readable model file ({exc.__class__.__name__}: {exc})") from None
    if not hasattr(model, "predict") or not hasattr(model, "classes_"):
        raise ModelError(f"{path}: holds a {type(model).__name__}, not a fitted classifier pipeline")
    return model


def read_card(model_path: str | Path) -> dict:
    """The model card beside a model file, or ``{}`` when there is none."""
    p = card_path(model_path)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}

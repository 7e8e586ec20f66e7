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

import contextlib
import json
import os
import platform
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from fer_features.config import (  # noqa: F401  (DEFAULT_MODEL, default_model_path: re-exported)
    BUNDLED_MODELS,
    CARD_SUFFIX,
    CHECKPOINT_SUFFIX,
    DEFAULT_DATA,
    DEFAULT_MODEL,
    DEFAULT_TRAIN_OUT,
    bundled_models_dir,
    default_model_path,
    resolve_model,
)

#: Suffixes saved as pickles with joblib; every other suffix is saved with skops.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")

def trusted_types() -> frozenset[str]:
    """Every type :func:`load_model` builds from a skops file beyond what skops trusts by itself.

    Derived from the registries, never written by hand: the project types and other libraries'
    types that each registered feature extractor (:data:`fer_features.features.FEATURES`) and
    classifier head (:data:`fer_features.classifiers.HEADS`) holds when fitted, and those of
    probability calibration (``fer train --calibrate``). A head registered with its types is
    trusted at once, so ``fer train`` never writes a file that ``fer predict`` refuses.

    Returns
    -------
    frozenset of str
        Fully qualified type names.
    """
    from fer_features.classifiers import CALIBRATION_TYPES, HEADS
    from fer_features.features import FEATURES

    return HEADS.types() | HEADS.library_types() | FEATURES.types() | FEATURES.library_types() | frozenset(CALIBRATION_TYPES)


_LIBRARIES = ("fer-features", "numpy", "scikit-learn", "scikit-image", "dlib-bin", "torch", "joblib", "skops", "pillow")


class ModelError(ValueError):
    """A model file is missing, unreadable or not a fer-features pipeline."""


class UnsafeModelError(ModelError):
    """A model file that loading would have to trust: a pickle, or a skops file with unknown types."""


class OutputError(ValueError):
    """An output path that cannot be written (checked before any work starts)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves an earlier ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    _usual_mode(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def skops_io():
    """:mod:`skops.io`, imported without importing torch.

    Importing skops walks every scikit-learn module to list the estimators it trusts, and one of
    them (``sklearn.externals.array_api_compat.torch``) imports torch when it is installed: ~2 s
    and several hundred MB for a pipeline that has no CNN. While skops is first imported, torch
    is hidden, so that module is skipped (the walk ignores modules that fail to import); a later
    ``import torch`` is unaffected.

    Returns
    -------
    module
        :mod:`skops.io`.
    """
    import importlib.abc
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io

    class _HideTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden while skops is imported)", name=name)
            return None

    hider = _HideTorch()
    sys.meta_path.insert(0, hider)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(hider)
        for name in [n for n in sys.modules if n.startswith("sklearn.externals.array_api_compat.torch")]:
            del sys.modules[name]  # a half-imported stub would shadow the real one later
    return skops.io


def card_path(model_path: str | Path) -> Path:
    """The model card of a model file: same name, ``.json``."""
    return Path(model_path).with_suffix(CARD_SUFFIX)


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
        ``cpu_count``, ``cpu`` (:func:`cpu_model`), ``platform``, ``processor``, ``python``, ``load_average_1min`` (where the
        OS has one: a busy machine shows here) and ``gpu`` when torch is imported and sees CUDA.
    """
    import sys

    info = {
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError, AttributeError):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        info["gpu"] = sys.modules["torch"].cuda.get_device_name(0)
    return info


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name``, e.g. "AMD EPYC"), else ``platform.processor()``.

    Speeds in model cards and benchmarks depend on it (int8 inference above all: AMX, VNNI or
    neither), so it is recorded beside them.
    """
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class StagedOutputs:
    """Temporary files beside their targets, moved into place together by :func:`staged_outputs`."""

    def __init__(self) -> None:
        self._temps: dict[Path, Path] = {}

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary path beside ``target`` (hidden, same suffix), moved onto ``target`` at the end.

        The target's folder is created. Asking twice for one target gives the same path.
        """
        target = Path(target)
        if target not in self._temps:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
            os.close(fd)
            _usual_mode(tmp)
            self._temps[target] = Path(tmp)
        return self._temps[target]

    def commit(self) -> None:
        """Move every temporary file onto its target; Ctrl-C is held back until all are moved."""
        import signal
        import threading

        interrupted = []
        main = threading.current_thread() is threading.main_thread()
        if main:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        try:
            for target, tmp in list(self._temps.items()):
                os.replace(tmp, target)
                del self._temps[target]
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt

    def discard(self) -> None:
        """Remove the temporary files not moved into place."""
        for tmp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._temps.clear()


@contextlib.contextmanager
def staged_outputs() -> Iterator[StagedOutputs]:
    """Write the files of one run to temporary names and move them into place together at the end.

    Inside the block, write each output to ``stage.path(target)``. When the block succeeds every
    file is moved onto its target (``os.replace``, with Ctrl-C held back until the last one);
    when it fails or is interrupted, the temporary files are removed and the targets keep
    their earlier contents: a run's model, card and plots change together or not at all.

    Examples
    --------
    >>> with staged_outputs() as stage:  # doctest: +SKIP
    ...     save_model(model, stage.path("m.skops"), format="skops")
    ...     plot_confusion_matrix(cm, stage.path("m.confusion.png"))
    """
    stage = StagedOutputs()
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()


def _usual_mode(path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode


def check_writable(path: str | os.PathLike, *, folder: bool = False, option: str = "--out") -> Path:
    """Check, before any work starts, that an output file (or folder) can be written.

    Nothing is created: the nearest existing folder above ``path`` gets a probe file, written
    and removed at once (a test that also holds for root and read-only file systems).

    Parameters
    ----------
    path : str or path-like
    folder : bool, default=False
        ``path`` is a folder to write files in (``--results-dir``), not a file.
    option : str, default='--out'
        The option's name, for the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        One line naming the option, the path and what stands in the way: a file where a folder
        must be, a folder where a file must be, a folder that cannot be written, or the
        installed package's bundled models (a run never writes into the package).
    """
    path = Path(path)
    bundled, target = bundled_models_dir().resolve(), path.resolve()
    if target == bundled or bundled in target.parents:
        raise OutputError(f"{option} {path}: inside the package's bundled models ({bundled}); write elsewhere, e.g. models/")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    where = path if folder else path.parent
    existing = where if str(where) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".fer-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path


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
        The model card (:class:`fer_features.training.ModelCard`, or any JSON-serialisable
        dict), written to :func:`card_path` with ``format`` and ``library_versions`` added (to
        a ModelCard too).
    extras : dict of {path: callable}, optional
        Other files of the run (plots, checkpoints): each callable is called with a temporary
        path to write, moved onto its key with the model (see :func:`staged_outputs`).

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
        for target, write in (extras or {}).items():
            write(stage.path(target))
    return path


def load_model(path: str | Path | None = None, *, trusted: bool = False, tta=False, precision: str = "auto"):
    """Load a fer-features pipeline saved by :func:`save_model`, or a CNN checkpoint, refusing files that could run code.

    Parameters
    ----------
    path : str or Path, optional
        A model file, or the name of a bundled model (``'default'``, ``'accurate'``: see
        :func:`fer_features.config.resolve_model`); defaults to :func:`default_model_path`
        (``$FER_MODEL``, else the bundled ``default``). The format is read from the content. A ``.pt``
        file is a CNN checkpoint (``fer train --clf cnn``; tensors only, read with
        ``torch.load(weights_only=True)``), loaded as :meth:`CNNClassifier.from_checkpoint
        <fer_features.cnn.estimators.CNNClassifier.from_checkpoint>`.
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
    path = resolve_model(path)
    if path.suffix == CHECKPOINT_SUFFIX:
        from fer_features.cnn import CNNClassifier

        try:
            return CNNClassifier.from_checkpoint(path, tta=tta, precision=precision)
        except (ValueError, FileNotFoundError) as exc:
            raise ModelError(str(exc)) from None
    if not path.is_file():
        raise ModelError(
            f"{path}: no such model file; the bundled models are {', '.join(BUNDLED_MODELS)} (`fer models` lists them "
            f"with any in ./models), or train one with `fer train --data {DEFAULT_DATA} --out {DEFAULT_TRAIN_OUT}`"
        )
    if model_format(path) == "skops":
        model = _load_skops(path)
    else:
        if not trusted:
            raise UnsafeModelError(
                f"{path}: a pickle-based (joblib) model file; loading it would run any code its author put in it, "
                "so it is refused. Load only files you made yourself: pass --trust-pickle (trusted=True), "
                "or train again with --out NAME.skops"
            )
        import joblib

        try:
            model = joblib.load(path)
        except Exception as exc:  # joblib/pickle raise many types for a bad file
            raise ModelError(f"{path}: not a readable model file ({exc.__class__.__name__}: {exc})") from None
    check_pipeline(model, path)
    return model


def _load_skops(path: Path):
    sio = skops_io()
    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a broken zip or schema
        raise ModelError(f"{path}: not a readable skops model file ({exc.__class__.__name__}: {exc})") from None
    unknown = sorted(set(found) - trusted_types())
    if unknown:
        raise UnsafeModelError(
            f"{path}: refused: it holds types that are neither fer-features' nor the scikit-learn/numpy ones its "
            f"pipelines use, and loading would build them: {', '.join(unknown)}"
        )
    try:
        return sio.load(path, trusted=found)
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

    from fer_features.datasets import EMOTIONS8, IMAGE_SIZE

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


def read_card(model_path: str | Path) -> dict:
    """The model card beside a model file, or ``{}`` when there is none."""
    p = card_path(model_path)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}

"""Model cards: what a trained model is, what it was trained on, how well it did, and on which machine."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from fer_features.config import CARD_SUFFIX


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB (Linux)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / 1024, 1)


def simple_params(pipe) -> dict:
    """The pipeline's parameters that are plain values (JSON-able), for the model card."""
    out = {}
    for k, v in pipe.get_params(deep=True).items():
        if isinstance(v, (str, int, float, bool, type(None))):
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, (str, int, float, bool)) for x in v):
            out[k] = list(v)
    return out


@dataclass
class ModelCard:
    """What a trained model is, what it was trained on and how well it did.

    :func:`fer_features.persist.files.save_model` writes it as JSON beside the model
    (``NAME.json``); :meth:`to_dict` gives that JSON's content.

    Attributes
    ----------
    name : str
        The model file's stem.
    features : str
        Feature spec, or ``'pixels'`` for an end-to-end head.
    classifier : str
    classes : list of str
        The model's ``classes_``.
    feature_dims : int or None
        Length of the feature vector before scaling and PCA (None end to end).
    params : dict
        The pipeline's plain-valued parameters (:func:`simple_params`).
    data : dict
        ``source``, ``format``, ``fingerprint``, ``counts``, ``skipped`` and
        ``training_resampling``.
    metrics : dict of {split: dict}
        :func:`fer_features.training.evaluation.evaluate` per split (``PrivateTest+TTA`` for the CNN).
    timings : dict of {str: float}
        Seconds: ``load_seconds``, ``extract_<name>_seconds``, ``fit_seconds``,
        ``evaluate_seconds``, ``total_seconds`` (and ``cnn_train_seconds``).
    machine : dict
        :func:`fer_features.persist.cards.machine_info`.
    created : str
        ISO date and time.
    command : str or None
        The command line that made the model, when it came from ``fer``.
    cnn : dict or None
        The CNN's checkpoint path, config, per-epoch history and selection score.
    peak_memory_mb : float or None
    format : str or None
        ``'skops'`` or ``'pickle'``: the model file's format, filled in by
        :func:`fer_features.persist.files.save_model`.
    library_versions : dict
        Filled in by :func:`fer_features.persist.files.save_model`.
    """

    name: str
    features: str
    classifier: str
    classes: list[str]
    feature_dims: int | None
    params: dict
    data: dict
    metrics: dict
    timings: dict
    machine: dict
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    command: str | None = None
    cnn: dict | None = None
    peak_memory_mb: float | None = None
    format: str | None = None
    library_versions: dict = field(default_factory=dict)

    _ORDER = ("name", "created", "command", "features", "classifier", "classes", "feature_dims", "params", "data",
              "metrics", "timings", "machine", "cnn", "peak_memory_mb", "format", "library_versions")  # fmt: skip

    def to_dict(self) -> dict:
        """The card as a JSON-ready dict (``cnn``, ``format`` and empty ``library_versions`` left out when unset)."""
        out = {k: getattr(self, k) for k in self._ORDER}
        for key in ("cnn", "format"):
            if out[key] is None:
                del out[key]
        if not self.library_versions:
            del out["library_versions"]
        return out

    @classmethod
    def for_run(cls, **fields) -> ModelCard:
        """The card of a run that ends now: ``machine`` (:func:`machine_info`) and ``peak_memory_mb``
        (:func:`peak_memory_mb`) are measured here, the other fields given.

        Parameters
        ----------
        **fields
            The card's other attributes (``name``, ``features``, ``classifier``, …).

        Returns
        -------
        ModelCard
        """
        return cls(**fields, machine=machine_info(), peak_memory_mb=peak_memory_mb())

    @classmethod
    def from_dict(cls, card: dict) -> ModelCard:
        """A card read back from its JSON (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in card.items() if k in names})


_LIBRARIES = ("fer-features", "numpy", "scikit-learn", "scikit-image", "dlib-bin", "torch", "joblib", "skops", "pillow")


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


def read_card(model_path: str | Path) -> dict:
    """The model card beside a model file, or ``{}`` when there is none."""
    p = card_path(model_path)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}

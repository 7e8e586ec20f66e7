"""Training API: fit a pipeline on Training, score PublicTest and PrivateTest, describe it in a card.

``fer train``, ``fer cv`` and ``fer benchmark`` are thin shells over this module: they parse
options, call :func:`train`, :func:`cross_validate_pipeline` or :func:`train_cnn_checkpoint`, and
print. A script does the same in a few lines:

    from fer_features.training import train
    pipe, card = train("../shared/data/fer2013.csv.gz", "hog", "logreg", limit=300, out="m.skops")
    card.metrics["PrivateTest"]["accuracy"]

Progress is reported to an optional ``on_event(kind, info)`` callback (the CLI draws rich bars
from it); the events are listed in :func:`train`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_features.config import (
    CHECKPOINT_SUFFIX,
    CNN_EPOCHS,
    CONFUSION_SUFFIX,
    DEFAULT_CLASSIFIER,
    DEFAULT_FEATURES,
    DEFAULT_PCA,
    TTA_REPORTS,
    USAGES,
)
from fer_features.datasets import DataError, FERDataset

#: ``on_event(kind, info)``: see :func:`train` for the kinds.
EventCallback = Callable[[str, dict], None]


def _no_events(kind: str, info: dict) -> None:
    """The default ``on_event``: report nothing."""


# --------------------------------------------------------------------------- small, shared steps


def limit_dataset(data: FERDataset, limit: int | None, seed: int = 0) -> FERDataset:
    """At most ``limit`` images per usage split, stratified by emotion, seeded.

    Parameters
    ----------
    data : FERDataset
    limit : int or None
        Images kept per split; ``0`` or ``None`` keeps everything (and returns ``data`` itself).
    seed : int, default=0
        The same seed picks the same images in every process.

    Returns
    -------
    FERDataset
    """
    if not limit:
        return data
    from sklearn.model_selection import train_test_split

    keep = []
    for usage in USAGES:
        idx = np.flatnonzero(data.usage == usage)
        if len(idx) <= limit:
            keep.append(idx)
            continue
        try:
            chosen, _ = train_test_split(idx, train_size=limit, stratify=data.y[idx], random_state=seed)
        except ValueError:  # a class too rare to stratify: plain random sample
            chosen = np.random.default_rng(seed).choice(idx, size=limit, replace=False)
        keep.append(chosen)
    return data.subset(np.sort(np.concatenate(keep)))


def class_weight_for(class_weight: str | None, balance: str = "none") -> str | None:
    """The heads' ``class_weight`` from a class-weight choice and a balance mode.

    Parameters
    ----------
    class_weight : {None, 'none', 'balanced'}
    balance : {'none', 'weights', 'oversample'}, default='none'
        ``'weights'`` means balanced class weights.

    Returns
    -------
    {None, 'balanced'}
    """
    if balance == "weights":
        return "balanced"
    return None if class_weight in (None, "none") else class_weight


def load_data(
    data: str | os.PathLike | FERDataset,
    data_format: str = "auto",
    *,
    on_event: EventCallback | None = None,
    **options,
) -> FERDataset:
    """A data set as given, or loaded from a path with :func:`fer_features.sources.load_dataset`.

    Parameters
    ----------
    data : path-like or FERDataset
    data_format : {'auto', 'fer2013', 'ferplus', 'photos'}, default='auto'
    on_event : callable, optional
        Gets ``("load-start", {"path"})`` and ``("loaded", {"dataset"})``.
    **options
        ``skip_bad``, ``label_mode``, ``classes``, ``seed``, ``n_jobs`` of ``load_dataset``.

    Returns
    -------
    FERDataset

    Raises
    ------
    DataError
        For a missing, unreadable or malformed source (the message names it).
    """
    if isinstance(data, FERDataset):
        return data
    from fer_features.sources import load_dataset

    emit = on_event or _no_events
    emit("load-start", {"path": str(data)})
    try:
        dataset = load_dataset(data, data_format, **options)
    except DataError:
        raise
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(str(exc)) from exc
    emit("loaded", {"dataset": dataset})
    return dataset


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


# --------------------------------------------------------------------------- the model card


@dataclass
class ModelCard:
    """What a trained model is, what it was trained on and how well it did.

    :func:`fer_features.persist.save_model` writes it as JSON beside the model
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
        :func:`fer_features.evaluation.evaluate` per split (``PrivateTest+TTA`` for the CNN).
    timings : dict of {str: float}
        Seconds: ``load_seconds``, ``extract_<name>_seconds``, ``fit_seconds``,
        ``evaluate_seconds``, ``total_seconds`` (and ``cnn_train_seconds``).
    machine : dict
        :func:`fer_features.persist.machine_info`.
    created : str
        ISO date and time.
    command : str or None
        The command line that made the model, when it came from ``fer``.
    cnn : dict or None
        The CNN's checkpoint path, config, per-epoch history and selection score.
    peak_memory_mb : float or None
    format : str or None
        ``'skops'`` or ``'pickle'``: the model file's format, filled in by
        :func:`fer_features.persist.save_model`.
    library_versions : dict
        Filled in by :func:`fer_features.persist.save_model`.
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
    def from_dict(cls, card: dict) -> ModelCard:
        """A card read back from its JSON (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in card.items() if k in names})


# --------------------------------------------------------------------------- options


@dataclass
class TrainSettings:
    """The options of a training run, checked by :meth:`check` before any data is read.

    Attributes
    ----------
    features : str or None
        Feature spec (``"hog+lbp+landmarks"``); None: that default, or the pixels for an
        end-to-end head such as ``cnn``.
    clf : str, default='svm'
        Classifier head (:func:`fer_features.classifiers.list_classifiers`).
    pca : int or None, default=256
        Components after scaling; None (or 0) keeps every feature.
    class_weight : {None, 'balanced'}, default=None
    balance : {'none', 'weights', 'oversample'}, default='none'
    augment : bool, default=False
        Add mirrored copies of the Training faces.
    augment_shift : int, default=0
        With ``augment``, also one copy shifted by up to this many pixels.
    n_jobs : int or None, default=-1
    seed : int, default=0
    limit : int, default=0
        At most this many images per split (0: all).
    cache_dir : str or None
        Cache of fitted extractors (the pipeline's ``memory``).
    cnn_checkpoint : str or None
        Trained CNN for the ``cnn`` feature; without it the CNN is trained first. For the
        ``cnn-ensemble`` classifier, its networks: paths joined by ``+``.
    cnn_params : dict
        :class:`~fer_features.cnn.CNNClassifier` parameters of a CNN that is trained (``preset``,
        ``epochs``, ``device`` …); ``device`` is also the ``cnn`` feature's.
    feature_params : dict of {name: dict}
        Extractor parameters, e.g. ``{"hog": {"orientations": 12}}``.
    calibrate : bool
        Temperature-scale the head's probabilities on PublicTest after the fit
        (:func:`temperature_scale_head`; feature pipelines; ``cnn-ensemble`` fits its own).
    """

    features: str | None = None
    clf: str = DEFAULT_CLASSIFIER
    pca: int | None = DEFAULT_PCA
    class_weight: str | None = None
    balance: str = "none"
    augment: bool = False
    augment_shift: int = 0
    n_jobs: int | None = -1
    seed: int = 0
    limit: int = 0
    cache_dir: str | os.PathLike | None = None
    cnn_checkpoint: str | os.PathLike | None = None
    cnn_params: dict = field(default_factory=dict)
    feature_params: dict = field(default_factory=dict)
    calibrate: bool = False

    def __post_init__(self):
        from fer_features.classifiers import END_TO_END, PRETRAINED

        self.end_to_end = self.clf in END_TO_END
        self.pretrained = self.clf in PRETRAINED  # networks trained already: fit loads them
        if self.features is None and not self.end_to_end:
            self.features = DEFAULT_FEATURES
        self.pca = self.pca or None
        self.cnn_params = {"epochs": CNN_EPOCHS, **self.cnn_params}

    @property
    def uses_cnn(self) -> bool:
        """Whether the feature spec has the ``cnn`` feature."""
        from fer_features.features import parse_spec

        return self.features is not None and "cnn" in parse_spec(self.features)

    @property
    def head_class_weight(self) -> str | None:
        """``class_weight`` of the head (:func:`class_weight_for`)."""
        return class_weight_for(self.class_weight, self.balance)

    def check(self, out: str | os.PathLike | None = None):
        """Check names and parameters; build the pipeline when it can be built before training.

        Parameters
        ----------
        out : path-like, optional
            Where the model goes (a CNN trained end to end saves its resume state beside it).

        Returns
        -------
        Pipeline or None
            Unfitted; None for a pipeline with the ``cnn`` feature and no checkpoint yet (its
            extractors and head are checked alone).

        Raises
        ------
        ValueError
            For an unknown name, a bad parameter or options that do not go together.
        FileNotFoundError
            For a missing CNN checkpoint or weights file.
        """
        from sklearn.base import clone

        from fer_features.classifiers import list_classifiers, make_classifier
        from fer_features.features import make_features
        from fer_features.pipelines import build_pipeline

        checked = getattr(self, "_checked", None)
        if checked is not None and checked[0] == (str(out), dataclasses.astuple(self)):
            return None if checked[1] is None else clone(checked[1])  # checked already: no second look at the files
        uses_cnn = self.uses_cnn
        if self.clf not in list_classifiers():
            raise ValueError(f"unknown classifier {self.clf!r}; valid names: {', '.join(list_classifiers())}")
        if self.end_to_end or uses_cnn:
            from fer_features.torch_utils import resolve_device

            resolve_device(self.cnn_params.get("device", "auto"))  # a missing GPU, before any data is read
        if self.pretrained and not self.cnn_checkpoint:
            raise ValueError(f"the {self.clf} classifier is made of trained networks: give them as --cnn-checkpoint a.pt+b.pt")
        for path in self.checkpoints():
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such CNN checkpoint")
        if self.augment_shift and not self.augment:
            raise ValueError("--augment-shift needs --augment")
        if self.end_to_end and (self.augment or self.balance != "none"):
            what = "trains nothing (its networks are trained already)" if self.pretrained else "augments its own training"
            raise ValueError(f"--augment and --balance are for feature pipelines; the {self.clf} classifier {what}")
        if self.calibrate and self.end_to_end:
            own = " (it fits its own temperature on PublicTest)" if self.pretrained else ""
            raise ValueError(f"--calibrate is for feature pipelines, not the {self.clf} classifier{own}")
        if self.cnn_params.get("precision") == "int8" and not self.end_to_end:
            raise ValueError(
                "--precision int8 is for --clf cnn and cnn-ensemble; for the cnn feature give --feature-param cnn.precision=int8"
            )
        if uses_cnn and not self.cnn_checkpoint:
            make_features(self.features, params=self.feature_params)
            make_classifier(self.clf, class_weight=self.head_class_weight)
            pipe = None
        else:
            pipe = build_pipeline(self.features, self.clf, **self._build_options(out))
            if "features" in pipe.named_steps:
                _check_extractors(pipe.named_steps["features"])
            if self.pretrained:  # its networks load, carry what the precision needs and agree on the classes
                pipe.named_steps["clf"].load_members()
        self._checked = ((str(out), dataclasses.astuple(self)), None if pipe is None else clone(pipe))
        return pipe

    def checkpoints(self) -> list[str]:
        """The CNN checkpoints given: ``cnn_checkpoint``, split at ``+`` for a pretrained head."""
        if not self.cnn_checkpoint:
            return []
        if not self.pretrained:
            return [str(self.cnn_checkpoint)]
        from fer_features.cnn.estimators import checkpoint_paths  # torch is imported on use only

        return checkpoint_paths(self.cnn_checkpoint)

    def check_cv(self):
        """:meth:`check` for cross-validation, which takes feature pipelines only.

        Raises
        ------
        ValueError
            Also for an end-to-end head (``cnn``), which ``fer train`` trains.
        """
        if self.end_to_end:
            raise ValueError(f"fer cv runs feature pipelines; the {self.clf} classifier is trained with `fer train --clf {self.clf}`")
        if self.calibrate:
            raise ValueError("calibrate fits a temperature on PublicTest, which cross-validation on Training does not use: it is for fer train")
        return self.check()

    def pipeline(self, cnn_checkpoint: str | os.PathLike | None = None, out: str | os.PathLike | None = None):
        """The unfitted pipeline, with ``cnn_checkpoint`` for the ``cnn`` feature if given."""
        from fer_features.pipelines import build_pipeline

        return build_pipeline(self.features, self.clf, **self._build_options(out, cnn_checkpoint))

    def _build_options(self, out=None, cnn_checkpoint=None) -> dict:
        feature_params = {k: dict(v) for k, v in self.feature_params.items()}
        checkpoint = cnn_checkpoint or self.cnn_checkpoint
        if checkpoint and not self.pretrained:
            feature_params.setdefault("cnn", {}).update(checkpoint=str(checkpoint), device=self.cnn_params.get("device", "auto"))
        clf_params = None
        if self.pretrained:
            inference = {k: self.cnn_params[k] for k in ("device", "precision", "tta") if k in self.cnn_params}
            clf_params = {"checkpoints": "+".join(self.checkpoints()), **inference}
        elif self.end_to_end:
            resume = {"resume_path": str(Path(out).with_suffix(".resume.pt"))} if out is not None else {}
            clf_params = {**self.cnn_params, **resume}
        return dict(
            pca=self.pca,
            class_weight=self.head_class_weight,
            n_jobs=self.n_jobs,
            random_state=self.seed,
            memory=str(self.cache_dir) if self.cache_dir else None,
            feature_params=feature_params,
            clf_params=clf_params,
        )


def _check_extractors(union) -> None:
    """Fit a copy of each extractor on one blank crop: its parameter checks, before any data is read.

    Warnings are silenced: a learning extractor (``sift-fisher``'s PCA and mixture, ``sift-bovw``'s
    k-means) fitted on one flat image warns of degenerate data that the real fit does not see.
    """
    import warnings

    from sklearn.base import clone

    from fer_features.config import IMAGE_SIZE

    blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for _, extractor in union.transformer_list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clone(extractor).fit(blank)


# --------------------------------------------------------------------------- training


def fit_pipeline(pipe, X, y, *, epochs: int | None = None, on_event: EventCallback | None = None, **fit_params) -> dict[str, float]:
    """Fit a pipeline, reporting extraction progress; returns its timings in seconds.

    Parameters
    ----------
    pipe : Pipeline
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
    y : array-like of shape (n_samples,)
    epochs : int, optional
        Epochs of a CNN head, for ``fit-start`` (its ``epoch`` events come through ``fit_params``).
    on_event : callable, optional
        Gets ``fit-start`` (``epochs``), ``extract`` (``name``, ``done``, ``total``) per chunk of images,
        ``fit-head`` once every extractor is done, and ``fit-done``.
    **fit_params
        Passed to ``pipe.fit`` (e.g. ``clf__X_val`` for the CNN).

    Returns
    -------
    dict
        ``extract_<name>_seconds`` per extractor and ``fit_seconds`` (all of ``fit``).
    """
    from fer_features.features.base import extraction_progress

    emit = on_event or _no_events
    timings: dict[str, float] = {}
    started: dict[str, float] = {}
    n_extractors = len(pipe.named_steps["features"].transformer_list) if "features" in pipe.named_steps else 0

    def hook(name: str, done: int, total: int) -> None:
        started.setdefault(name, time.perf_counter())
        emit("extract", {"name": name, "done": done, "total": total})
        if done >= total:
            timings[f"extract_{name}_seconds"] = round(time.perf_counter() - started[name], 2)
            if len(timings) == n_extractors:
                emit("fit-head", {})

    emit("fit-start", {"epochs": epochs})
    start = time.perf_counter()
    with extraction_progress(hook):
        pipe.fit(X, y, **fit_params)
    timings["fit_seconds"] = round(time.perf_counter() - start, 2)
    emit("fit-done", {})
    return timings


def cnn_card(ckpt: dict) -> dict:
    """The model-card entries of a CNN checkpoint: its config, epochs, selection score, device, precision, time,
    and the checkpoints it started from (``init``) or was distilled from (``teacher``)."""
    keys = ("config", "history", "best_epoch", "val_accuracy", "device", "precision", "soft_labels", "train_seconds",
            "init", "teacher")  # fmt: skip
    return {k: ckpt[k] for k in keys if k in ckpt}


def temperature_scale_head(pipe, X, y) -> float:
    """Replace a fitted pipeline's head by itself with temperature-scaled probabilities, fitted on ``X, y``.

    The head is frozen (:class:`~sklearn.frozen.FrozenEstimator`) and wrapped in
    :class:`~sklearn.calibration.CalibratedClassifierCV` with ``method='temperature'``: its
    decision values (or log-probabilities) divided by one temperature that minimises the log
    loss on ``X, y`` (Guo et al. 2017, "On calibration of modern neural networks", ICML). The
    predicted labels do not change. ``X, y`` must not be the faces the model is scored on:
    ``fer train --calibrate`` gives it PublicTest, the selection split
    (BENCHMARKS.md, section "Probability calibration").

    Parameters
    ----------
    pipe : Pipeline
        Fitted, with feature steps before the head (not an end-to-end head).
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
    y : array-like of shape (n_samples,)
        Labels among the head's classes.

    Returns
    -------
    float
        The temperature (above 1: the head was overconfident).

    Raises
    ------
    ValueError
        For a pipeline with no feature steps, or labels ``y`` whose classes are not the head's.

    Notes
    -----
    A head that scales its own probabilities already (``svm``: a temperature fitted by 3-fold
    cross-validation on Training) gets a second temperature on top; the two multiply.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    if len(pipe.steps) < 2:
        raise ValueError("temperature_scale_head needs a feature pipeline: this one is a single end-to-end step")
    name, head = pipe.steps[-1]
    if [str(c) for c in np.unique(y)] != [str(c) for c in head.classes_]:
        raise ValueError(f"the calibration labels' classes {sorted(map(str, np.unique(y)))} are not the head's {list(map(str, head.classes_))}")
    calibrated = CalibratedClassifierCV(FrozenEstimator(head), method="temperature").fit(pipe[:-1].transform(X), y)
    pipe.steps[-1] = (name, calibrated)
    return round(1.0 / float(calibrated.calibrated_classifiers_[0].calibrators[0].beta_), 4)


def ensemble_card(ensemble) -> dict:
    """The model-card entries of a fitted :class:`~fer_features.cnn.estimators.CNNEnsembleClassifier`:
    each member's checkpoint, architecture, selection score and inference batch size, the precision and the temperature."""
    members = []
    for path, member in zip(ensemble.checkpoints_, ensemble.estimators_):
        ckpt = member.checkpoint_
        members.append({"checkpoint": path, "net": ckpt["config"].get("net"), "best_epoch": ckpt.get("best_epoch"),
                        "val_accuracy": ckpt.get("val_accuracy"), "teacher": ckpt.get("teacher"),
                        "batch_size": member.batch_size})  # fmt: skip
    return {"ensemble": members, "precision": ensemble.inference_precision(), "tta": ensemble.tta,
            "temperature": ensemble.temperature_}  # fmt: skip


def parse_cnn_params(items: list[str]) -> dict:
    """``["ema=0.999"]`` → ``{"ema": 0.999}`` for the CNN's training parameters (values as JSON if they parse).

    Parameters
    ----------
    items : list of str
        ``KEY=VALUE`` each (``fer train --cnn-param``).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        For an item without ``=`` or a name that is not a :class:`~fer_features.cnn.train.TrainConfig` field
        (``preset``, ``epochs``, ``precision`` and ``seed`` have options of their own).
    """
    import json

    from fer_features.cnn.train import TrainConfig

    valid = sorted(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("net", "preset", "epochs", "precision", "seed"))
    params = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in valid:
            raise ValueError(f"--cnn-param {item!r}: expected KEY=VALUE with KEY one of {', '.join(valid)}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def log_cnn_epochs(path: str | os.PathLike) -> None:
    """Append the CNN's per-epoch log records (logger ``fer_features.cnn``) to ``path``, with times."""
    import logging

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logging.getLogger("fer_features.cnn")
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def soft_targets(dataset: FERDataset, n_fit: int) -> dict:
    """``soft``/``soft_classes`` fit arguments of the CNN when the data has vote distributions.

    Parameters
    ----------
    dataset : FERDataset
        FERPlus with ``label_mode='probability'`` has them (``dataset.soft``).
    n_fit : int
        Training faces the CNN is fitted on: vote distributions are used only when Training
        was not resampled (``n_fit`` is its size).

    Returns
    -------
    dict
        ``{"soft": ..., "soft_classes": [...]}``, or ``{}``.
    """
    training = dataset.usage == "Training"
    if dataset.soft is None or n_fit != int(training.sum()):
        return {}
    return {"soft": dataset.soft[training], "soft_classes": list(dataset.classes)}


def train_cnn_checkpoint(
    X_train, y_train, X_val, y_val, path: str | os.PathLike, *, seed: int = 0, resume_path=None,
    soft: dict | None = None, on_event: EventCallback | None = None, **cnn_params,
) -> dict:  # fmt: skip
    """Train the CNN (best epoch on ``X_val``), save its checkpoint to ``path``; its card entries.

    Parameters
    ----------
    X_train, X_val : ndarray of shape (n, 48, 48), dtype uint8
    y_train, y_val : array-like of str
        Emotion names; ``X_val`` (PublicTest) selects the epoch.
    path : path-like
        The checkpoint (``.pt``), written atomically.
    seed : int, default=0
    resume_path : path-like, optional
        Training state after each epoch, to resume an interrupted run.
    soft : dict, optional
        Vote distributions to train on (:func:`soft_targets`).
    on_event : callable, optional
        Gets ``fit-start`` (with ``epochs``), ``epoch`` (each epoch's record) and ``fit-done``.
    **cnn_params
        :class:`~fer_features.cnn.CNNClassifier` parameters (``preset``, ``epochs``, ``device`` …).

    Returns
    -------
    dict
        :func:`cnn_card` of the checkpoint.
    """
    from fer_features.cnn import CNNClassifier, save_checkpoint

    emit = on_event or _no_events
    params = {"epochs": CNN_EPOCHS, **cnn_params}
    net = CNNClassifier(seed=seed, resume_path=str(resume_path) if resume_path else None, **params)
    emit("fit-start", {"epochs": params["epochs"]})
    net.fit(X_train, y_train, X_val=X_val, y_val=y_val, on_epoch=lambda record: emit("epoch", record), **(soft or {}))
    emit("fit-done", {})
    save_checkpoint(net.checkpoint_, path)
    return cnn_card(net.checkpoint_)


def score_splits(pipe, dataset: FERDataset, *, tta: bool = False) -> dict[str, dict]:
    """:func:`~fer_features.evaluation.evaluate` on PublicTest and PrivateTest (those not empty).

    With ``tta`` (a CNN head), PrivateTest is also scored with test-time augmentation, reported
    apart: ``PrivateTest+TTA`` (each face and its mirror image) and ``PrivateTest+TTA10`` (ten crops).
    """
    from fer_features.evaluation import evaluate

    metrics = {}
    for split in ("PublicTest", "PrivateTest"):
        X, y = dataset.split(split)
        if len(X):
            metrics[split] = evaluate(pipe, X, y)
    if tta and "PrivateTest" in metrics:
        for name, mode in TTA_REPORTS:
            pipe.set_params(clf__tta=mode)
            metrics[name] = evaluate(pipe, *dataset.split("PrivateTest"))
        pipe.set_params(clf__tta=False)
    return metrics


def train(
    data: str | os.PathLike | FERDataset,
    features: str | None = None,
    clf: str = DEFAULT_CLASSIFIER,
    *,
    settings: TrainSettings | None = None,
    out: str | os.PathLike | None = None,
    data_format: str = "auto",
    load_options: dict | None = None,
    command: str | None = None,
    on_event: EventCallback | None = None,
    **options,
):
    """Fit a pipeline on Training, score PublicTest and PrivateTest, and describe it in a card.

    Parameters
    ----------
    data : path-like or FERDataset
        A data set, or any source :func:`fer_features.sources.load_dataset` reads.
    features : str, optional
        Feature spec; default ``hog+lbp+landmarks`` (none for an end-to-end head).
    clf : str, default='svm'
    settings : TrainSettings, optional
        All options at once, in place of ``features``, ``clf`` and ``**options``.
    out : path-like, optional
        Save the model here (:func:`fer_features.persist.save_model`: skops, or a pickle for a
        ``.joblib`` name), its card beside it as ``.json`` and the PrivateTest confusion matrix
        as ``.confusion.png``; a CNN trained end to end also writes its checkpoint as ``.pt``
        (the ``cnn`` feature's, as ``.cnn.pt``, when it is trained). The files are written to
        temporary names and moved into place together at the end: an interrupted or failed run
        leaves the previous set intact.
    data_format : {'auto', 'fer2013', 'ferplus', 'photos'}, default='auto'
    load_options : dict, optional
        ``skip_bad``, ``label_mode``, ``classes`` for loading a path.
    command : str, optional
        Recorded in the card.
    on_event : callable, optional
        ``on_event(kind, info)`` with kinds ``load-start``, ``loaded``, ``message`` (``text``),
        ``fit-start``, ``extract``, ``fit-head``, ``epoch``, ``fit-done``, ``evaluate-start``
        and ``evaluate-done`` (``metrics``).
    **options
        The fields of :class:`TrainSettings`: ``pca``, ``class_weight``, ``balance``,
        ``augment``, ``augment_shift``, ``n_jobs``, ``seed``, ``limit``, ``cache_dir``,
        ``cnn_checkpoint``, ``cnn_params``, ``feature_params``.

    Returns
    -------
    pipeline : Pipeline
        Fitted.
    card : ModelCard

    Raises
    ------
    ValueError, FileNotFoundError
        For bad options (see :meth:`TrainSettings.check`), or an ``out`` that cannot be written
        (:class:`~fer_features.persist.OutputError`), before any data is read.
    DataError
        For data that cannot be read, or lacks the Training (or, for a CNN, PublicTest) split.
    """
    from fer_features.persist import check_writable, machine_info, save_model

    t0 = time.perf_counter()
    if settings is None:
        settings = TrainSettings(features=features, clf=clf, **options)
    elif features is not None or options:
        raise TypeError("give either settings or features, clf and options, not both")
    emit = on_event or _no_events
    out = Path(out) if out is not None else None
    pipe = settings.check(out)
    if out is not None:
        check_writable(out)  # before any work: a run is not lost to an unwritable --out
    load_options = {"seed": settings.seed, "n_jobs": settings.n_jobs, **(load_options or {})}
    dataset = limit_dataset(load_data(data, data_format, on_event=emit, **load_options), settings.limit, settings.seed)
    timings: dict[str, float] = {"load_seconds": round(time.perf_counter() - t0, 2)}
    X_train, y_train = dataset.split("Training")
    X_val, y_val = dataset.split("PublicTest")
    if len(X_train) == 0:
        raise DataError(f"{dataset.source}: has no Training images")
    needs_val = (settings.end_to_end and not settings.pretrained) or settings.uses_cnn
    if needs_val and len(X_val) == 0:
        raise DataError(f"{dataset.source}: has no PublicTest images, which select the CNN's best epoch")
    if settings.calibrate and len(X_val) == 0:
        raise DataError(f"{dataset.source}: has no PublicTest images, which --calibrate fits the temperature on")
    if settings.calibrate and set(np.unique(y_val)) != set(np.unique(y_train)):
        raise DataError(
            f"{dataset.source}: --calibrate needs every Training class in PublicTest and no other; PublicTest lacks "
            f"{sorted(set(np.unique(y_train)) - set(np.unique(y_val)))} and adds {sorted(set(np.unique(y_val)) - set(np.unique(y_train)))}"
        )
    n_original = len(X_train)
    if settings.augment or settings.balance == "oversample":
        from fer_features.augment import resample_training

        X_train, y_train = resample_training(
            X_train, y_train, augment_flip=settings.augment, shift=settings.augment_shift, balance=settings.balance,
            seed=settings.seed,
        )  # fmt: skip
        emit("message", {"text": f"Training resampled: {n_original:,} → {len(X_train):,} faces "
                                 f"(augment={settings.augment}, balance={settings.balance})"})  # fmt: skip

    cnn_info, checkpoint = {}, settings.cnn_checkpoint
    if pipe is None:  # the cnn feature, without a checkpoint: train that CNN first
        checkpoint = (out or Path("model")).with_suffix(".cnn.pt")
        emit("message", {"text": f"training the CNN for the cnn feature ({settings.cnn_params.get('preset', 'small')} preset) → {checkpoint}"})
        resume = (out or Path("model")).with_suffix(".cnn.resume.pt")
        cnn_info = train_cnn_checkpoint(X_train, y_train, X_val, y_val, checkpoint, seed=settings.seed, resume_path=resume,
                                        soft=soft_targets(dataset, len(X_train)), on_event=emit, **settings.cnn_params)  # fmt: skip
        timings["cnn_train_seconds"] = cnn_info["train_seconds"]
        pipe = settings.pipeline(checkpoint, out)
    from fer_features.pipelines import cap_pca
    from fer_features.small_data import fit_to_class_counts

    for note in fit_to_class_counts(pipe, y_train, head=settings.clf, source=str(dataset.source)):  # classes of 1-2 faces, before any work
        emit("message", {"text": f"warning: {note}"})
    cap_pca(pipe, len(X_train))  # after: fewer stacking folds leave its branches more faces
    name = f"{settings.features or 'pixels'} → {settings.clf}"
    emit("message", {"text": f"training {name} on {len(X_train):,} Training faces"})
    fit_params = {}
    if settings.pretrained and len(X_val):  # its temperature is fitted on the selection split
        fit_params = {"clf__X_val": X_val, "clf__y_val": y_val}
    elif settings.end_to_end:
        emit_epoch = lambda record: emit("epoch", record)  # noqa: E731
        fit_params = {"clf__X_val": X_val, "clf__y_val": y_val, "clf__on_epoch": emit_epoch,
                      **{f"clf__{k}": v for k, v in soft_targets(dataset, len(X_train)).items()}}  # fmt: skip
    epochs = settings.cnn_params["epochs"] if settings.end_to_end and not settings.pretrained else None
    try:
        timings.update(fit_pipeline(pipe, X_train, y_train, epochs=epochs, on_event=emit, **fit_params))
    except ValueError as exc:
        if not settings.pretrained:
            raise
        raise DataError(f"{dataset.source}: {exc}") from None  # its networks were checked: the labels do not fit them
    params = simple_params(pipe)  # the head's own parameters, before a calibration wraps it
    calibration = None
    if settings.calibrate:
        t = time.perf_counter()
        emit("message", {"text": f"fitting a temperature on {len(X_val):,} PublicTest faces"})
        calibration = {"method": "temperature", "split": "PublicTest", "temperature": temperature_scale_head(pipe, X_val, y_val)}
        timings["calibrate_seconds"] = round(time.perf_counter() - t, 2)
    extras = {}  # the run's other files, moved into place with the model and its card
    if settings.pretrained:
        cnn_info = ensemble_card(pipe.named_steps["clf"])
    elif settings.end_to_end:
        from fer_features.cnn import save_checkpoint

        ckpt = pipe.named_steps["clf"].checkpoint_
        checkpoint = (out or Path("model")).with_suffix(CHECKPOINT_SUFFIX)
        extras[checkpoint] = lambda p: save_checkpoint(ckpt, p)
        cnn_info = cnn_card(ckpt)

    t = time.perf_counter()
    emit("evaluate-start", {"splits": ("PublicTest", "PrivateTest")})
    metrics = score_splits(pipe, dataset, tta=settings.end_to_end)
    timings["evaluate_seconds"] = round(time.perf_counter() - t, 2)
    emit("evaluate-done", {"metrics": metrics, "title": name})

    source = dataset.source if isinstance(data, FERDataset) else str(data)
    card = ModelCard(
        name=out.stem if out is not None else "model",
        command=command,
        features=settings.features or "pixels",
        classifier=settings.clf,
        classes=[str(c) for c in pipe.classes_],
        feature_dims=len(pipe.named_steps["features"].get_feature_names_out()) if "features" in pipe.named_steps else None,
        params={**params, **({"calibration": calibration} if calibration else {})},
        data={
            "source": source,
            "format": data_format,
            "fingerprint": dataset.fingerprint,
            "counts": dataset.counts(),
            "skipped": len(dataset.skipped),
            "training_resampling": {"augment": settings.augment, "augment_shift": settings.augment_shift,
                                    "balance": settings.balance, "n_fit": len(X_train)},  # fmt: skip
        },
        metrics=metrics,
        timings=timings,
        machine=machine_info(),
        cnn=cnn_info if settings.pretrained else {"checkpoint": str(checkpoint), **cnn_info} if cnn_info else None,
    )
    if out is not None and "PrivateTest" in metrics:
        from fer_features.evaluation import plot_confusion_matrix

        private = metrics["PrivateTest"]
        title = f"{name}, PrivateTest (acc {private['accuracy']:.3f})"
        extras[out.with_suffix(CONFUSION_SUFFIX)] = lambda p: plot_confusion_matrix(private["confusion_matrix"], p, title=title)
    timings["total_seconds"] = round(time.perf_counter() - t0, 2)
    card.peak_memory_mb = peak_memory_mb()
    if out is not None:  # model, card, confusion matrix and checkpoint change together or not at all
        save_model(pipe, out, card, extras=extras)
    return pipe, card


# --------------------------------------------------------------------------- cross-validation


def cv_summary(scores: dict) -> dict:
    """Mean and standard deviation of :func:`sklearn.model_selection.cross_validate` scores.

    Parameters
    ----------
    scores : dict
        With ``test_accuracy`` and ``test_macro_f1`` arrays (one value per fold).

    Returns
    -------
    dict
        ``accuracy_mean``, ``accuracy_std``, ``macro_f1_mean``, ``macro_f1_std`` (floats).
    """
    return {
        "accuracy_mean": float(np.mean(scores["test_accuracy"])),
        "accuracy_std": float(np.std(scores["test_accuracy"])),
        "macro_f1_mean": float(np.mean(scores["test_macro_f1"])),
        "macro_f1_std": float(np.std(scores["test_macro_f1"])),
    }


#: Scorers of every cross-validation here: accuracy and macro-F1.
CV_SCORING = {"accuracy": "accuracy", "macro_f1": "f1_macro"}


def cross_validate_pipeline(
    data: str | os.PathLike | FERDataset,
    features: str = DEFAULT_FEATURES,
    clf: str = DEFAULT_CLASSIFIER,
    *,
    settings: TrainSettings | None = None,
    folds: int = 5,
    data_format: str = "auto",
    load_options: dict | None = None,
    on_event: EventCallback | None = None,
    **options,
) -> dict:
    """Stratified k-fold cross-validation on Training (PublicTest and PrivateTest untouched).

    The folds are scikit-learn's :class:`~sklearn.model_selection.StratifiedKFold`, shuffled with
    ``seed``; with ``augment`` or ``balance='oversample'`` each training fold is resampled
    (:class:`~fer_features.augment.TrainingResampler`), its held-out fold is not.

    Parameters
    ----------
    data : path-like or FERDataset
    features : str, default='hog+lbp+landmarks'
    clf : str, default='svm'
        A feature-pipeline head (not ``cnn``).
    settings : TrainSettings, optional
        All options at once, in place of ``features``, ``clf`` and ``**options``.
    folds : int, default=5
    data_format, load_options, on_event
        As in :func:`train` (events ``load-start``, ``loaded``, ``cv-start``).
    **options
        :class:`TrainSettings` fields: ``pca``, ``class_weight``, ``balance``, ``augment``,
        ``n_jobs``, ``seed``, ``limit``, ``feature_params``.

    Returns
    -------
    dict
        ``features``, ``classifier``, ``folds``, ``seed``, ``n_images``, ``data_fingerprint``,
        the :func:`cv_summary` and ``per_fold`` (``fold``, ``accuracy``, ``macro_f1``,
        ``fit_seconds``, ``score_seconds``).

    Raises
    ------
    ValueError, FileNotFoundError
        For bad options, before any data is read.
    DataError
        For unreadable data, or fewer Training images than folds.
    """
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from fer_features.pipelines import cap_pca
    from fer_features.small_data import check_cv_folds, fit_to_class_counts

    settings = settings or TrainSettings(features=features, clf=clf, **options)
    features, clf = settings.features, settings.clf
    pipe = settings.check_cv()
    emit = on_event or _no_events
    load_options = {"seed": settings.seed, "n_jobs": settings.n_jobs, **(load_options or {})}
    dataset = limit_dataset(load_data(data, data_format, on_event=emit, **load_options), settings.limit, settings.seed)
    X, y = dataset.split("Training")
    if len(X) < folds:
        raise DataError(f"{dataset.source if isinstance(data, FERDataset) else data}: {len(X)} Training images cannot make {folds} folds")
    notes = check_cv_folds(y, folds, source=str(dataset.source))
    for note in notes + fit_to_class_counts(pipe, y, head=settings.clf, source=str(dataset.source), folds=folds):
        emit("message", {"text": f"warning: {note}"})
    cap_pca(pipe, len(X) * (folds - 1) // folds)  # the smallest training fold
    if settings.augment or settings.balance == "oversample":
        from fer_features.augment import TrainingResampler

        pipe = TrainingResampler(pipe, augment_flip=settings.augment, balance=settings.balance, seed=settings.seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    emit("cv-start", {"text": f"{folds}-fold cross-validation of {features} → {clf} on {len(X):,} Training faces"})
    with warnings.catch_warnings():  # a class of fewer faces than folds: said above, in one line
        warnings.filterwarnings("ignore", message="The least populated class in y has only")
        scores = cross_validate(pipe, X, y, cv=splitter, scoring=CV_SCORING)
    per_fold = [
        {
            "fold": i + 1,
            "accuracy": float(scores["test_accuracy"][i]),
            "macro_f1": float(scores["test_macro_f1"][i]),
            "fit_seconds": round(float(scores["fit_time"][i]), 2),
            "score_seconds": round(float(scores["score_time"][i]), 2),
        }
        for i in range(folds)
    ]
    return {
        "features": features,
        "classifier": clf,
        "folds": folds,
        "seed": settings.seed,
        "n_images": int(len(X)),
        "data_fingerprint": dataset.fingerprint,
        **cv_summary(scores),
        "per_fold": per_fold,
    }

"""Training API: fit a pipeline on Training, score PublicTest and PrivateTest, describe it in a card.

``fer train``, ``fer cv`` and ``fer benchmark`` are thin shells over this module: they parse
options, call :func:`train`, :func:`cross_validate_pipeline` or :func:`train_cnn_checkpoint`, and
print. A script does the same in a few lines:

    from fer_features.training.run import train
    pipe, card = train("../shared/data/fer2013.csv.gz", "hog", "logreg", limit=300, out="m.skops")
    card.metrics["PrivateTest"]["accuracy"]

Progress is reported to an optional ``on_event(kind, info)`` callback (the CLI draws rich bars
from it); the events are listed in :func:`train`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from fer_features.config import (
    CHECKPOINT_SUFFIX,
    CONFUSION_SUFFIX,
    DEFAULT_CLASSIFIER,
    TTA_REPORTS,
)
from fer_features.data.fer2013 import DataError, FERDataset
from fer_features.data.sources import load_data
from fer_features.events import EventCallback, no_events
from fer_features.persist.cards import ModelCard, simple_params
from fer_features.training.cnn import cnn_card, ensemble_card, soft_targets, train_cnn_checkpoint
from fer_features.training.settings import TrainPlan, TrainSettings


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

    emit = on_event or no_events
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


def score_splits(pipe, dataset: FERDataset, *, tta: bool = False) -> dict[str, dict]:
    """:func:`~fer_features.training.evaluation.evaluate` on PublicTest and PrivateTest (those not empty).

    With ``tta`` (a CNN head), PrivateTest is also scored with test-time augmentation, reported
    apart: ``PrivateTest+TTA`` (each face and its mirror image) and ``PrivateTest+TTA10`` (ten crops).
    """
    from fer_features.training.evaluation import evaluate

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
    plan: TrainPlan | None = None,
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
        A data set, or any source :func:`fer_features.data.sources.load_dataset` reads.
    features : str, optional
        Feature spec; default ``hog+lbp+landmarks`` (none for an end-to-end head).
    clf : str, default='svm'
    settings : TrainSettings, optional
        All options at once, in place of ``features``, ``clf`` and ``**options``.
    plan : TrainPlan, optional
        Options checked already (:meth:`TrainSettings.plan`), in place of ``settings``; its
        ``out`` is the model's path.
    out : path-like, optional
        Save the model here (:func:`fer_features.persist.files.save_model`: skops, or a pickle for a
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
        (:class:`~fer_features.persist.outputs.OutputError`), before any data is read.
    DataError
        For data that cannot be read, or lacks the Training (or, for a CNN, PublicTest) split.
    """
    from fer_features.persist.files import save_model
    from fer_features.persist.outputs import check_writable

    t0 = time.perf_counter()
    if (settings is not None or plan is not None) and (features is not None or options):
        raise TypeError("give either settings (or a plan) or features, clf and options, not both")
    if plan is not None and (settings is not None or (out is not None and Path(out) != plan.out)):
        raise TypeError("a plan carries its settings and out: give neither again")
    if plan is None:
        settings = settings or TrainSettings(features=features, clf=clf, **options)
        plan = settings.plan(out)
    settings, pipe, out = plan.settings, plan.pipeline, plan.out
    emit = on_event or no_events
    if out is not None:
        check_writable(out)  # before any work: a run is not lost to an unwritable --out
    load_options = {"seed": settings.seed, "n_jobs": settings.n_jobs, **(load_options or {})}
    dataset = load_data(data, data_format, on_event=emit, limit=settings.limit, **load_options)
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
        from fer_features.data.resampling import resample_training

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
    from fer_features.training.pipelines import cap_pca
    from fer_features.training.small_data import fit_to_class_counts

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
        from fer_features.cnn.checkpoints import save_checkpoint

        ckpt = pipe.named_steps["clf"].checkpoint_
        checkpoint = (out or Path("model")).with_suffix(CHECKPOINT_SUFFIX)
        extras[checkpoint] = lambda p: save_checkpoint(ckpt, p)
        cnn_info = cnn_card(ckpt)

    t = time.perf_counter()
    emit("evaluate-start", {"splits": ("PublicTest", "PrivateTest")})
    metrics = score_splits(pipe, dataset, tta=settings.end_to_end)
    timings["evaluate_seconds"] = round(time.perf_counter() - t, 2)
    emit("evaluate-done", {"metrics": metrics, "title": name})

    timings["total_seconds"] = round(time.perf_counter() - t0, 2)
    if out is not None and "PrivateTest" in metrics:
        from fer_features.plotting import confusion_matrix_png

        private = metrics["PrivateTest"]
        title = f"{name}, PrivateTest (acc {private['accuracy']:.3f})"
        extras[out.with_suffix(CONFUSION_SUFFIX)] = confusion_matrix_png(private["confusion_matrix"], title=title)
    source = dataset.source if isinstance(data, FERDataset) else str(data)
    card = ModelCard.for_run(
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
        cnn=cnn_info if settings.pretrained else {"checkpoint": str(checkpoint), **cnn_info} if cnn_info else None,
    )
    if out is not None:  # model, card, confusion matrix and checkpoint change together or not at all
        save_model(pipe, out, card, extras=extras)
    return pipe, card

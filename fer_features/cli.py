"""The ``fer`` command line: train, evaluate and predict with facial-expression pipelines."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    help="Facial expression recognition with hand-crafted and learned features (FER2013 protocol).",
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_DATA = Path("../shared/data/fer2013.csv.gz")


class Split(str, Enum):
    training = "Training"
    public = "PublicTest"
    private = "PrivateTest"


class ClassWeight(str, Enum):
    none = "none"
    balanced = "balanced"


class DataFormat(str, Enum):
    auto = "auto"
    fer2013 = "fer2013"
    ferplus = "ferplus"
    photos = "photos"


class LabelMode(str, Enum):
    majority = "majority"
    probability = "probability"


class Balance(str, Enum):
    none = "none"
    weights = "weights"
    oversample = "oversample"


_DATA_HELP = "FER2013 challenge CSV (fer2013.csv[.gz]), zip or folder; FERPlus fer2013new.csv; or a folder of labelled photos."
FormatOpt = Annotated[DataFormat, typer.Option("--format", help="Data format; auto detects it from the path.")]
LabelModeOpt = Annotated[LabelMode, typer.Option(help="FERPlus labels: majority vote, or the vote distribution (argmax for training).")]
ClassesOpt = Annotated[int, typer.Option(min=7, max=8, help="FERPlus classes: 7, or 8 with contempt.")]


class Detector(str, Enum):
    hog = "hog"
    mmod = "mmod"


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2 (a user mistake, no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _load_data(
    path: Path,
    skip_bad: bool,
    *,
    format: str = "auto",
    label_mode: str = "majority",
    classes: int = 7,
    seed: int = 0,
    n_jobs: int = -1,
):
    """Load any data source (:func:`fer_features.sources.load_dataset`); a bad one is a user error."""
    from fer_features.datasets import DataError
    from fer_features.sources import load_dataset

    try:
        with console.status(f"loading {path}"):
            data = load_dataset(
                path, format, skip_bad=skip_bad, label_mode=label_mode, classes=classes, seed=seed, n_jobs=n_jobs
            )
    except (FileNotFoundError, DataError, ValueError) as exc:
        fail(str(exc))
    if data.skipped:
        err_console.print(f"[yellow]skipped {len(data.skipped)} bad file(s)[/], e.g. {data.skipped[0][0]}: {data.skipped[0][1]}")
    if hasattr(data, "summary"):  # a photo folder: faces found, photos left out
        err_console.print(data.summary(), highlight=False, soft_wrap=True)
    return data


def _limit(data, limit: int | None, seed: int):
    """At most ``limit`` images per usage split, stratified by emotion, seeded."""
    if not limit:
        return data
    import numpy as np
    from sklearn.model_selection import train_test_split

    from fer_features.datasets import USAGES

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


def _class_weight(class_weight: ClassWeight | None, balance: Balance = Balance.none) -> str | None:
    """The heads' ``class_weight`` from ``--class-weight`` and ``--balance`` (``weights`` means balanced)."""
    if balance is Balance.weights:
        return "balanced"
    return None if class_weight in (None, ClassWeight.none) else class_weight.value


def _peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB (Linux)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / 1024, 1)


def _fit_with_progress(pipe, X, y) -> dict[str, float]:
    """Fit, drawing a bar per feature extractor and a spinner for the classifier; returns timings."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fer_features.features.base import extraction_progress

    timings: dict[str, float] = {}
    tasks: dict[str, int] = {}
    started: dict[str, float] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        fit_task = None
        start = time.perf_counter()

        def hook(name: str, done: int, total: int) -> None:
            nonlocal fit_task
            if name not in tasks:
                tasks[name] = progress.add_task(f"extract {name}", total=total)
                started[name] = time.perf_counter()
            progress.update(tasks[name], completed=done)
            if done >= total:
                timings[f"extract_{name}_seconds"] = round(time.perf_counter() - started[name], 2)
                if fit_task is None and len(timings) == len(pipe.named_steps["features"].transformer_list):
                    fit_task = progress.add_task("fit scaler, PCA and classifier", total=None)

        with extraction_progress(hook):
            pipe.fit(X, y)
        if fit_task is not None:
            progress.update(fit_task, total=1, completed=1)
        timings["fit_seconds"] = round(time.perf_counter() - start, 2)
    return timings


def _simple_params(pipe) -> dict:
    """The pipeline's parameters that are plain values (JSON-able), for the model card."""
    out = {}
    for k, v in pipe.get_params(deep=True).items():
        if isinstance(v, (str, int, float, bool, type(None))):
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, (str, int, float, bool)) for x in v):
            out[k] = list(v)
    return out


def _metrics_table(rows: dict[str, dict], title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("split", "images", "accuracy", "macro-F1"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split, m in rows.items():
        table.add_row(split, str(m["n"]), f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}")
    return table


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Preset(str, Enum):
    small = "small"
    medium = "medium"
    large = "large"


class Tta(str, Enum):
    none = "none"
    flip = "flip"
    ten_crop = "ten-crop"


class Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


@app.command()
def train(
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    augment: Annotated[bool, typer.Option(help="Add mirrored copies of the Training faces.")] = False,
    augment_shift: Annotated[int, typer.Option(min=0, help="With --augment, also one copy shifted by up to this many pixels.")] = 0,
    balance: Annotated[Balance, typer.Option(help="Rare classes: none, class weights, or oversampling of Training.")] = Balance.none,
    features: Annotated[
        str | None, typer.Option(help="Feature spec, names joined by '+' (see `fer list`). Default hog+lbp+landmarks; none for --clf cnn.")
    ] = None,
    clf: Annotated[str, typer.Option(help="Classifier head (see `fer list`).")] = "svm",
    out: Annotated[Path, typer.Option(help="Where to write the trained pipeline (.joblib).")] = Path("models/fer-default.joblib"),
    pca: Annotated[int, typer.Option(help="PCA components after scaling; 0 keeps every feature.")] = 256,
    class_weight: Annotated[ClassWeight, typer.Option(help="'balanced' weights classes by inverse frequency.")] = ClassWeight.none,
    n_jobs: Annotated[int, typer.Option(help="Parallel workers for extraction and calibration; -1 all cores.")] = -1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    limit: Annotated[int, typer.Option(help="Use at most this many images per split (0: all); for quick runs.")] = 0,
    skip_bad: Annotated[bool, typer.Option(help="Leave out unreadable or malformed images instead of stopping.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache extracted Training features here (Pipeline memory) for re-runs.")] = None,
    cnn_checkpoint: Annotated[
        Path | None, typer.Option(help="Trained CNN (.pt) for the cnn feature; without it the CNN is trained first.")
    ] = None,
    preset: Annotated[Preset, typer.Option(help="CNN size: small (minutes), medium (~1.5 h in bf16 on 2 CPU cores) or large (GPU).")] = Preset.small,
    epochs: Annotated[int, typer.Option(help="CNN epochs at most (early stopping on PublicTest).")] = 25,
    device: Annotated[Device, typer.Option(help="Torch device for the CNN: auto = cuda, else mps, else cpu.")] = Device.auto,
    precision: Annotated[
        Precision, typer.Option(help="CNN arithmetic: auto = bf16 on CUDA and on CPUs with native bf16, else fp32.")
    ] = Precision.auto,
    cnn_param: Annotated[
        list[str] | None,
        typer.Option(help="CNN training parameter KEY=VALUE, repeatable, e.g. ema=0.999, mixup=0.2, label_smoothing=0.1."),
    ] = None,
    log_file: Annotated[Path | None, typer.Option(help="Append each CNN epoch's record (JSON) to this file, for long runs.")] = None,
    feature_param: Annotated[
        list[str] | None,
        typer.Option(help="Extractor parameter NAME.PARAM=VALUE, repeatable, e.g. hog.orientations=12 or vgg16.weights=vgg16.pth."),
    ] = None,
) -> None:
    """Fit a pipeline on [bold]Training[/], report PublicTest and PrivateTest, save it with a model card.

    Writes OUT (joblib), OUT with .json (model card: features, classifier, parameters, data
    fingerprint, library versions, metrics, timings) and OUT with .confusion.png (PrivateTest).
    With [bold]--clf cnn[/] the network is trained end to end (best epoch on PublicTest) and its
    checkpoint written to OUT with .pt; an interrupted run resumes when run again. With the
    [bold]cnn[/] feature and no --cnn-checkpoint, that network is trained first (OUT with .cnn.pt).
    """
    from fer_features.classifiers import END_TO_END, list_classifiers
    from fer_features.evaluation import evaluate, plot_confusion_matrix
    from fer_features.features import parse_spec
    from fer_features.persist import machine_info, save_model
    from fer_features.pipelines import DEFAULT_FEATURES, build_pipeline, cap_pca

    t0 = time.perf_counter()
    if log_file is not None:
        _log_epochs_to(log_file)
    end_to_end = clf in END_TO_END
    if features is None and not end_to_end:
        features = DEFAULT_FEATURES
    try:
        cnn_options = {
            **_parse_cnn_params(cnn_param or []), "preset": preset.value, "epochs": epochs, "device": device.value,
            "precision": precision.value,
        }
        uses_cnn = features is not None and "cnn" in parse_spec(features)
        if clf not in list_classifiers():
            raise ValueError(f"unknown classifier {clf!r}; valid names: {', '.join(list_classifiers())}")
        if end_to_end or uses_cnn:
            from fer_features.cnn.net import resolve_device

            resolve_device(device.value)  # a missing GPU is a user error, before any data is read
        if cnn_checkpoint is not None and not cnn_checkpoint.is_file():
            raise FileNotFoundError(f"{cnn_checkpoint}: no such CNN checkpoint")
        feature_params = _parse_feature_params(feature_param or [])
        if cnn_checkpoint:
            feature_params.setdefault("cnn", {}).update(checkpoint=str(cnn_checkpoint), device=device.value)
        if augment_shift and not augment:
            raise ValueError("--augment-shift needs --augment")
        if end_to_end and (augment or balance is not Balance.none):
            raise ValueError(f"--augment and --balance are for feature pipelines; the {clf} classifier augments its own training")
        build = dict(
            pca=pca or None,
            class_weight=_class_weight(class_weight, balance),
            n_jobs=n_jobs,
            random_state=seed,
            memory=str(cache_dir) if cache_dir else None,
            clf_params={**cnn_options, "resume_path": str(out.with_suffix(".resume.pt"))} if end_to_end else None,
        )
        # Checks names and parameters before any data is read. A pipeline with the cnn feature is
        # built once its checkpoint exists; until then its extractors and head are checked alone.
        if uses_cnn and not cnn_checkpoint:
            from fer_features.classifiers import make_classifier
            from fer_features.features import make_features

            make_features(features, params=feature_params)
            make_classifier(clf, class_weight=build["class_weight"])
            pipe = None
        else:
            pipe = build_pipeline(features, clf, **build, feature_params=feature_params)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    dataset = _limit(
        _load_data(data, skip_bad, format=data_format.value, label_mode=label_mode.value, classes=classes, seed=seed, n_jobs=n_jobs),
        limit,
        seed,
    )
    load_seconds = round(time.perf_counter() - t0, 2)
    X_train, y_train = dataset.split("Training")
    X_val, y_val = dataset.split("PublicTest")
    if len(X_train) == 0:
        fail(f"{data}: has no Training images")
    n_original = len(X_train)
    if augment or balance is Balance.oversample:
        from fer_features.augment import resample_training

        X_train, y_train = resample_training(
            X_train, y_train, augment_flip=augment, shift=augment_shift, balance=balance.value, seed=seed
        )
        console.print(f"Training resampled: {n_original:,} → {len(X_train):,} faces (augment={augment}, balance={balance.value})")
    if (end_to_end or uses_cnn) and len(X_val) == 0:
        fail(f"{data}: has no PublicTest images, which select the CNN's best epoch")
    timings: dict[str, float] = {"load_seconds": load_seconds}
    cnn_card: dict = {}

    if uses_cnn and cnn_checkpoint is None:
        cnn_checkpoint = out.with_suffix(".cnn.pt")
        console.print(f"training the CNN for the cnn feature ({preset.value} preset) → {cnn_checkpoint}")
        cnn_card = _train_cnn(
            X_train, y_train, X_val, y_val, cnn_options, seed, cnn_checkpoint, out.with_suffix(".cnn.resume.pt"),
            soft=_soft_targets(dataset, n_original, X_train),
        )
        timings["cnn_train_seconds"] = cnn_card["train_seconds"]
        feature_params.setdefault("cnn", {}).update(checkpoint=str(cnn_checkpoint), device=device.value)
        pipe = build_pipeline(features, clf, **build, feature_params=feature_params)
    cap_pca(pipe, len(X_train))

    console.print(f"training [bold]{features or 'pixels'} → {clf}[/] on {len(X_train):,} Training faces")
    if end_to_end:
        timings.update(_fit_end_to_end(pipe, X_train, y_train, X_val, y_val, epochs, soft=_soft_targets(dataset, n_original, X_train)))
        ckpt = pipe.named_steps["clf"].checkpoint_
        cnn_checkpoint = out.with_suffix(".pt")
        from fer_features.cnn.train import save_checkpoint

        save_checkpoint(ckpt, cnn_checkpoint)
        cnn_card = _cnn_card(ckpt)
    else:
        timings.update(_fit_with_progress(pipe, X_train, y_train))

    metrics = {}
    t = time.perf_counter()
    with console.status("scoring PublicTest and PrivateTest"):
        for split in ("PublicTest", "PrivateTest"):
            X, y = dataset.split(split)
            if len(X):
                metrics[split] = evaluate(pipe, X, y)
        if end_to_end and len(dataset.split("PrivateTest")[0]):
            # test-time augmentation, reported apart from the plain score
            for name, mode in (("PrivateTest+TTA", "flip"), ("PrivateTest+TTA10", "ten-crop")):
                pipe.set_params(clf__tta=mode)
                metrics[name] = evaluate(pipe, *dataset.split("PrivateTest"))
            pipe.set_params(clf__tta=False)
    timings["evaluate_seconds"] = round(time.perf_counter() - t, 2)
    console.print(_metrics_table(metrics, f"{features or 'pixels'} → {clf}"))

    card = {
        "name": out.stem,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "fer " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "features": features or "pixels",
        "classifier": clf,
        "classes": [str(c) for c in pipe.classes_],
        "feature_dims": len(pipe.named_steps["features"].get_feature_names_out()) if "features" in pipe.named_steps else None,
        "params": _simple_params(pipe),
        "data": {
            "source": str(data),
            "format": data_format.value,
            "fingerprint": dataset.fingerprint,
            "counts": dataset.counts(),
            "skipped": len(dataset.skipped),
            "training_resampling": {"augment": augment, "augment_shift": augment_shift, "balance": balance.value, "n_fit": len(X_train)},
        },
        "metrics": metrics,
        "timings": timings,
        "machine": machine_info(),
    }
    if cnn_card:
        card["cnn"] = {"checkpoint": str(cnn_checkpoint), **cnn_card}
    if "PrivateTest" in metrics:
        plot_confusion_matrix(
            metrics["PrivateTest"]["confusion_matrix"],
            out.with_suffix(".confusion.png"),
            title=f"{features or 'pixels'} → {clf}, PrivateTest (acc {metrics['PrivateTest']['accuracy']:.3f})",
        )
    timings["total_seconds"] = round(time.perf_counter() - t0, 2)
    card["peak_memory_mb"] = _peak_memory_mb()
    save_model(pipe, out, card)
    if "PrivateTest" in metrics:
        m = metrics["PrivateTest"]
        console.print(f"PrivateTest accuracy [bold]{m['accuracy']:.4f}[/], macro-F1 [bold]{m['macro_f1']:.4f}[/]")
    console.print(
        f"saved {out} (card {out.with_suffix('.json')}); wall time {timings['total_seconds']:.0f} s, "
        f"peak memory {card['peak_memory_mb']:.0f} MiB"
    )


def _parse_feature_params(items: list[str]) -> dict[str, dict]:
    """``["hog.orientations=12"]`` → ``{"hog": {"orientations": 12}}``; values are JSON if they parse."""
    params: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, param = key.partition(".")
        if not (sep and dot and name and param):
            raise ValueError(f"--feature-param {item!r}: expected NAME.PARAM=VALUE, e.g. hog.orientations=12")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params.setdefault(name.strip().lower(), {})[param.strip()] = tuple(value) if isinstance(value, list) else value
    return params


def _log_epochs_to(path: Path) -> None:
    """Send the CNN's per-epoch log records (``fer_features.cnn``) to ``path``, appended, with times."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logging.getLogger("fer_features.cnn")
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _parse_cnn_params(items: list[str]) -> dict:
    """``["ema=0.999"]`` → ``{"ema": 0.999}`` for the CNN's training parameters (values as JSON if they parse).

    Raises
    ------
    ValueError
        For an item without ``=`` or a name that is not a :class:`~fer_features.cnn.train.TrainConfig` field.
    """
    from dataclasses import fields

    from fer_features.cnn.train import TrainConfig

    valid = sorted(f.name for f in fields(TrainConfig) if f.name not in ("net", "preset", "epochs", "precision", "seed"))
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


def _epoch_progress(total_epochs: int):
    """A rich progress bar over epochs and the callback that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console,
    )
    task = progress.add_task("CNN epochs", total=total_epochs)

    def on_epoch(record: dict) -> None:
        progress.update(
            task,
            completed=record["epoch"],
            description=f"CNN epochs (loss {record['loss']:.3f}, PublicTest acc {record['val_accuracy']:.4f})",
        )

    return progress, on_epoch


def _soft_targets(dataset, n_original: int, X_train) -> dict:
    """``soft``/``soft_classes`` fit arguments for the CNN when the data has vote distributions
    (FERPlus ``--label-mode probability``) and Training was not resampled; else ``{}``."""
    if dataset.soft is None or len(X_train) != n_original:
        return {}
    return {"soft": dataset.soft[dataset.usage == "Training"], "soft_classes": list(dataset.classes)}


def _fit_end_to_end(pipe, X_train, y_train, X_val, y_val, epochs: int, soft: dict | None = None) -> dict[str, float]:
    start = time.perf_counter()
    progress, on_epoch = _epoch_progress(epochs)
    extra = {f"clf__{k}": v for k, v in (soft or {}).items()}
    with progress:
        pipe.fit(X_train, y_train, clf__X_val=X_val, clf__y_val=y_val, clf__on_epoch=on_epoch, **extra)
    return {"fit_seconds": round(time.perf_counter() - start, 2)}


def _train_cnn(
    X_train, y_train, X_val, y_val, options: dict, seed: int, path: Path, resume_path: Path, soft: dict | None = None
) -> dict:
    """Train the CNN whose embedding the cnn feature uses; save it to ``path``; its card entries."""
    from fer_features.cnn import CNNClassifier, save_checkpoint

    net = CNNClassifier(seed=seed, resume_path=str(resume_path), **options)
    progress, on_epoch = _epoch_progress(options["epochs"])
    with progress:
        net.fit(X_train, y_train, X_val=X_val, y_val=y_val, on_epoch=on_epoch, **(soft or {}))
    save_checkpoint(net.checkpoint_, path)
    return _cnn_card(net.checkpoint_)


def _cnn_card(ckpt: dict) -> dict:
    """The model-card entries of a CNN checkpoint: its config, epochs, selection score, device, time."""
    keys = ("config", "history", "best_epoch", "val_accuracy", "device", "precision", "soft_labels", "train_seconds")
    return {k: ckpt[k] for k in keys if k in ckpt}


@app.command()
def cv(
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    augment: Annotated[bool, typer.Option(help="Add mirrored copies of each training fold's faces.")] = False,
    balance: Annotated[Balance, typer.Option(help="none, class weights, or oversampling of each training fold.")] = Balance.none,
    features: Annotated[str, typer.Option(help="Feature spec, names joined by '+' (see `fer list`).")] = "hog+lbp+landmarks",
    clf: Annotated[str, typer.Option(help="Classifier head (see `fer list`).")] = "svm",
    folds: Annotated[int, typer.Option(min=2, help="Number of stratified folds.")] = 5,
    pca: Annotated[int, typer.Option(help="PCA components after scaling; 0 keeps every feature.")] = 256,
    class_weight: Annotated[ClassWeight, typer.Option(help="'balanced' weights classes by inverse frequency.")] = ClassWeight.none,
    n_jobs: Annotated[int, typer.Option(help="Parallel workers inside each fold (extraction, calibration); -1 all cores.")] = -1,
    seed: Annotated[int, typer.Option(help="Seed of the fold split and the models.")] = 0,
    limit: Annotated[int, typer.Option(help="Use at most this many Training images (0: all); for quick runs.")] = 0,
    feature_param: Annotated[list[str] | None, typer.Option(help="Extractor parameter NAME.PARAM=VALUE, repeatable.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out unreadable or malformed images.")] = False,
) -> None:
    """Stratified k-fold cross-validation on [bold]Training[/]: mean ± std accuracy and macro-F1, per-fold times.

    The folds are scikit-learn's StratifiedKFold (shuffled with --seed); PublicTest and
    PrivateTest are not touched.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from fer_features.classifiers import END_TO_END
    from fer_features.pipelines import build_pipeline, cap_pca

    if clf in END_TO_END:
        fail(f"fer cv runs feature pipelines; the {clf} classifier is trained with `fer train --clf {clf}`")
    try:
        pipe = build_pipeline(
            features,
            clf,
            pca=pca or None,
            class_weight=_class_weight(class_weight, balance),
            n_jobs=n_jobs,
            random_state=seed,
            feature_params=_parse_feature_params(feature_param or []),
        )
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    dataset = _limit(
        _load_data(data, skip_bad, format=data_format.value, label_mode=label_mode.value, classes=classes, seed=seed, n_jobs=n_jobs),
        limit,
        seed,
    )
    X, y = dataset.split("Training")
    if len(X) < folds:
        fail(f"{data}: {len(X)} Training images cannot make {folds} folds")
    cap_pca(pipe, len(X) * (folds - 1) // folds)  # the smallest training fold
    if augment or balance is Balance.oversample:
        from fer_features.augment import TrainingResampler

        pipe = TrainingResampler(pipe, augment_flip=augment, balance=balance.value, seed=seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with console.status(f"{folds}-fold cross-validation of {features} → {clf} on {len(X):,} Training faces"):
        scores = cross_validate(pipe, X, y, cv=splitter, scoring={"accuracy": "accuracy", "macro_f1": "f1_macro"})
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
    result = {
        "features": features,
        "classifier": clf,
        "folds": folds,
        "seed": seed,
        "n_images": int(len(X)),
        "data_fingerprint": dataset.fingerprint,
        "accuracy_mean": float(np.mean(scores["test_accuracy"])),
        "accuracy_std": float(np.std(scores["test_accuracy"])),
        "macro_f1_mean": float(np.mean(scores["test_macro_f1"])),
        "macro_f1_std": float(np.std(scores["test_macro_f1"])),
        "per_fold": per_fold,
    }
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{features} → {clf}, {folds}-fold CV on {len(X):,} Training faces")
    for col in ("fold", "accuracy", "macro-F1", "fit (s)", "score (s)"):
        table.add_column(col, justify="right")
    for f in per_fold:
        table.add_row(str(f["fold"]), f"{f['accuracy']:.4f}", f"{f['macro_f1']:.4f}", f"{f['fit_seconds']:.1f}", f"{f['score_seconds']:.1f}")
    table.add_row(
        "mean ± std",
        f"{result['accuracy_mean']:.4f} ± {result['accuracy_std']:.4f}",
        f"{result['macro_f1_mean']:.4f} ± {result['macro_f1_std']:.4f}",
        "",
        "",
    )
    console.print(table)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Trained pipeline (.joblib), or a CNN checkpoint (.pt) scored directly.")],
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    split: Annotated[Split, typer.Option(help="Which usage split to score.")] = Split.private,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Confusion-matrix PNG (default: beside the model).")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out unreadable or malformed images.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of a photo folder's split: the --seed given to fer train.")] = 0,
    tta: Annotated[Tta, typer.Option(help="CNN checkpoint (.pt): test-time augmentation none, flip or ten-crop.")] = Tta.none,
    precision: Annotated[Precision, typer.Option(help="CNN checkpoint (.pt): inference arithmetic.")] = Precision.auto,
) -> None:
    """Score a trained pipeline on one split: per-class report, accuracy, macro-F1, confusion matrix."""
    from fer_features.evaluation import evaluate as score
    from fer_features.evaluation import format_report, plot_confusion_matrix
    from fer_features.persist import ModelError, load_model

    try:
        if model.suffix == ".pt":
            from fer_features.cnn import CNNClassifier

            pipe = CNNClassifier.from_checkpoint(model, tta=tta.value, precision=precision.value)
        else:
            pipe = load_model(model)
    except (ModelError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    dataset = _load_data(data, skip_bad, format=data_format.value, label_mode=label_mode.value, classes=classes, seed=seed)
    X, y = dataset.split(split.value)
    if len(X) == 0:
        fail(f"{data}: has no {split.value} images")
    with console.status(f"scoring {len(X):,} {split.value} faces"):
        metrics = score(pipe, X, y)
    plot = plot or model.with_suffix(f".{split.value}.confusion.png")
    plot_confusion_matrix(metrics["confusion_matrix"], plot, title=f"{model.stem}, {split.value} (acc {metrics['accuracy']:.3f})")
    metrics = {"model": str(model), "split": split.value, "data_fingerprint": dataset.fingerprint, **metrics, "plot": str(plot)}
    if model.suffix == ".pt":
        metrics.update(tta=tta.value, precision="bf16" if pipe._uses_bf16() else "fp32")
    if json_out:
        typer.echo(json.dumps(metrics, indent=2))
        return
    console.print(f"[bold]{model}[/] on {split.value} ({len(X):,} faces)")
    console.print(format_report(metrics), highlight=False)
    console.print(f"confusion matrix: {plot}")


@app.command()
def predict(
    paths: Annotated[list[Path] | None, typer.Argument(help="Photos, 48x48 face crops, folders of them, or one video file.")] = None,
    model: Annotated[Path | None, typer.Option(help="Trained pipeline; default $FER_MODEL or models/fer-default.joblib.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    annotate: Annotated[
        Path | None, typer.Option(help="Write the photo with boxes and labels here (a folder for several photos; an .mp4/.avi for a video).")
    ] = None,
    detector: Annotated[Detector, typer.Option(help="dlib face detector: HOG (fast) or MMOD CNN (robust, slow).")] = Detector.hog,
    upsample: Annotated[int, typer.Option(help="Times to double the photo before detection (finds smaller faces).")] = 1,
    min_score: Annotated[float | None, typer.Option(help="Drop detections scoring lower (default: 0.3 for hog, 0 for mmod).")] = None,
    out: Annotated[Path | None, typer.Option(help="Video or webcam: write per-frame faces, labels and probabilities to this CSV.")] = None,
    every: Annotated[int, typer.Option(min=1, help="Video or webcam: analyse every k-th frame.")] = 1,
    webcam: Annotated[bool, typer.Option("--webcam", help="Classify the camera's frames live in an OpenCV window (needs a display).")] = False,
    device: Annotated[int, typer.Option(help="Webcam: OpenCV camera index.")] = 0,
) -> None:
    """Find every face in each photo (or each frame of a video, or the webcam) and say its emotion.

    A 48x48 image is taken as an aligned face crop and classified directly. A photo with no
    face is reported and the batch goes on; an unreadable file is reported and makes the exit
    code 2 once the batch is done. One video file (.mp4, .avi, .mov, .mkv, .webm, …) is read
    frame by frame: [bold]--out[/] CSV, [bold]--annotate[/] video, [bold]--every[/] k.
    """
    from fer_features.persist import ModelError, default_model_path, load_model
    from fer_features.predict import annotate as draw
    from fer_features.predict import expand_paths, predict_paths
    from fer_features.video import is_video

    if webcam or (paths and len(paths) == 1 and is_video(paths[0])):
        options = dict(detector=detector.value, upsample=upsample, min_score=min_score)
        _predict_video(None if webcam else paths[0], model, out, annotate, every, device, json_out, options)
        return
    if not paths:
        fail("give photos, folders of them or one video file, or --webcam")
    if out is not None:
        fail("--out writes the CSV of a video or the webcam; for photos use --json")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or folder")
    files = expand_paths(paths)
    if not files:
        fail(f"no image files in {', '.join(map(str, paths))}")
    try:
        pipe = load_model(model or default_model_path())
    except ModelError as exc:
        fail(str(exc))
    with console.status(f"finding faces in {len(files)} image(s)"):
        results = predict_paths(pipe, files, detector=detector.value, upsample=upsample, min_score=min_score)

    if annotate is not None:
        from fer_features.faces import load_image
        from fer_features.persist import atomic_path

        readable = [r for r in results if r.error is None]
        for r in readable:
            target = annotate if len(files) == 1 else annotate / f"{Path(r.path).stem}.annotated.png"
            with atomic_path(target) as tmp:
                draw(load_image(r.path), r.faces).save(tmp, format="PNG")

    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        _print_predictions(results, [str(c) for c in pipe.classes_])
    errors = [r for r in results if r.error]
    for r in errors:
        err_console.print(f"[bold red]error:[/] {r.error}", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(code=2)


def _print_predictions(results, classes: list[str]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    for col in ("image", "face", "box (l, t, r, b)", "emotion", *classes):
        table.add_column(col, justify="left" if col in ("image", "emotion", "box (l, t, r, b)") else "right")
    for r in results:
        name = Path(r.path).name
        if r.error:
            table.add_row(name, "", "", "[red]unreadable[/]", *[""] * len(classes))
        elif not r.faces:
            table.add_row(name, "0", "", "[yellow]no face found[/]", *[""] * len(classes))
        for i, f in enumerate(r.faces, 1):
            probs = [f"{f.probabilities[c]:.2f}" for c in classes]
            table.add_row(name, str(i), ", ".join(map(str, f.box)), f"[bold]{f.label}[/]", *probs)
    # A pipe or file gets the whole table, not one wrapped at 80 columns.
    wide = console if console.is_terminal else Console(width=max(console.width, 140))
    wide.print(table)


class Backend(str, Enum):
    local = "local"
    dask = "dask"


def _names(values: list[str] | None) -> list[str] | None:
    """Repeatable, comma-separated option values → a list (None when not given)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command()
def benchmark(
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    grid_file: Annotated[
        Path | None, typer.Option("--grid", help="TOML or YAML grid file (features, classifiers, baseline, pca, cv, ...).")
    ] = None,
    features: Annotated[
        list[str] | None, typer.Option(help="Feature sets to run (repeat or comma-separate), e.g. hog,hog+lbp. Default: the full grid.")
    ] = None,
    clf: Annotated[list[str] | None, typer.Option(help="Classifier heads to run (repeat or comma-separate). Default: svm, gbm, logreg.")] = None,
    baseline: Annotated[bool | None, typer.Option("--baseline/--no-baseline", help="Score the CNN trained end to end (default: yes).")] = None,
    pca: Annotated[int | None, typer.Option(help="PCA components after scaling; 0 keeps every feature (default 256).")] = None,
    cv: Annotated[int | None, typer.Option(help="Also k-fold CV accuracy on Training with this many folds (default 0: none).")] = None,
    class_weight: Annotated[ClassWeight | None, typer.Option(help="'balanced' weights classes by inverse frequency.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of PCA, classifiers and CV folds (default 0).")] = None,
    limit: Annotated[int, typer.Option(help="Use at most this many images per split (0: all); for quick runs.")] = 0,
    cnn_checkpoint: Annotated[
        Path, typer.Option(help="CNN for the cnn feature and the baseline; trained first (--preset, --epochs) if missing.")
    ] = Path("models/cnn-small.pt"),
    preset: Annotated[Preset, typer.Option(help="CNN size if it has to be trained.")] = Preset.small,
    epochs: Annotated[int, typer.Option(help="CNN epochs at most, if it has to be trained.")] = 25,
    device: Annotated[Device, typer.Option(help="Torch device for the CNN.")] = Device.auto,
    n_jobs: Annotated[int, typer.Option(help="Cells run at once (processes; -1: one per core). Each gets cores/n_jobs threads.")] = -1,
    backend: Annotated[Backend, typer.Option(help="Where cells run: local processes (joblib) or a Dask cluster.")] = Backend.local,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster).")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature and cell cache (default: ~/.cache/fer-features/benchmark).")] = None,
    results_dir: Annotated[Path, typer.Option(help="Where the CSV, JSON, Markdown and PNG results go.")] = Path("benchmarks/results"),
    report: Annotated[Path | None, typer.Option(help="Also write this Markdown report (the repository's BENCHMARKS.md).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute cached features and cells.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the cell records as JSON.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out unreadable or malformed images.")] = False,
) -> None:
    """Every feature set × classifier on the FER2013 protocol, plus the CNN baseline, in one table.

    Each extractor runs once over the data and is cached (keyed by the data fingerprint and its
    parameters), so the grid costs one extraction per feature; finished cells are cached too,
    so a run that stopped picks up where it was. Writes benchmark.csv/.json/.md and PNG plots to
    --results-dir, and with --report a BENCHMARKS.md.
    """
    import dataclasses

    from fer_features.benchmark import Grid, load_grid, run_benchmark, write_benchmarks_md, write_results
    from fer_features.datasets import default_cache_dir
    from fer_features.persist import library_versions, machine_info

    t0 = time.perf_counter()
    try:
        grid = load_grid(grid_file) if grid_file else Grid()
        overrides = {
            "features": _names(features),
            "classifiers": _names(clf),
            "baseline": baseline,
            "cv": cv,
            "seed": seed,
            "class_weight": _class_weight(class_weight),
        }
        for key, value in overrides.items():
            if value is not None or (key == "class_weight" and class_weight is not None):
                setattr(grid, key, value)
        if pca is not None:
            grid.pca = pca or None
        grid.validate()
        needs_cnn = grid.baseline or any("cnn" in f.split("+") for f in grid.features)
        if needs_cnn:
            from fer_features.cnn.net import resolve_device

            resolve_device(device.value)
        if backend is Backend.local and scheduler:
            raise ValueError("--scheduler is for --backend dask")
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    dataset = _limit(
        _load_data(data, skip_bad, format=data_format.value, label_mode=label_mode.value, classes=classes, seed=grid.seed),
        limit,
        grid.seed,
    )
    if needs_cnn and not cnn_checkpoint.is_file():
        X_train, y_train = dataset.split("Training")
        X_val, y_val = dataset.split("PublicTest")
        if len(X_val) == 0:
            fail(f"{data}: has no PublicTest images, which select the CNN's best epoch")
        err_console.print(
            f"{cnn_checkpoint} does not exist: training the CNN first ({preset.value} preset, at most {epochs} epochs; "
            "this dominates the benchmark's time: ~30 min on 2 CPU cores for the small preset)"
        )
        options = {"preset": preset.value, "epochs": epochs, "device": device.value}
        _train_cnn(X_train, y_train, X_val, y_val, options, grid.seed, cnn_checkpoint, cnn_checkpoint.with_suffix(".resume.pt"))

    cells = grid.cells()
    err_console.print(f"benchmark: {len(cells)} cells on {len(dataset):,} faces ({backend.value} backend)")
    try:
        records = _run_with_progress(
            run_benchmark,
            dataset,
            grid,
            total=len(cells),
            cache_dir=cache_dir or default_cache_dir() / "benchmark",
            cnn_checkpoint=cnn_checkpoint if needs_cnn else None,
            n_jobs=n_jobs if n_jobs > 0 else (os.cpu_count() or 1),
            backend=backend.value,
            scheduler=scheduler,
            device=device.value,
            force=force,
        )
    except ValueError as exc:
        fail(str(exc))
    grid_dict = dataclasses.asdict(grid)
    meta = {
        "command": "fer " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_info(),
        "library_versions": library_versions(("dask", "distributed", "pandas", "matplotlib")),
        "data": {"source": str(data), "format": data_format.value, "fingerprint": dataset.fingerprint,
                 "counts": dataset.counts(), "limit": limit},
        "grid": grid_dict,
        "settings_text": f"PCA {grid.pca or 'none'}, seed {grid.seed}, class weights {grid.class_weight or 'none'}, "
        f"CV folds {grid.cv or 'none'}, CNN checkpoint {cnn_checkpoint if needs_cnn else 'not used'}, "
        f"{backend.value} backend, {n_jobs if n_jobs > 0 else os.cpu_count()} cells at once",
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cells_computed": sum(not r.get("cached") for r in records),
        "cells_cached": sum(bool(r.get("cached")) for r in records),
    }
    paths = write_results(records, meta, results_dir)
    if report is not None:
        write_benchmarks_md(records, meta, report, paths)
    if json_out:
        typer.echo(json.dumps(records, indent=2, default=str))
        return
    _print_benchmark(records)
    console.print(f"results: {', '.join(str(p) for p in paths.values())}" + (f"; report {report}" if report else ""))
    console.print(f"wall time {meta['wall_seconds']:.0f} s ({meta['cells_computed']} cells computed, {meta['cells_cached']} cached)")


def _run_with_progress(run, dataset, grid, *, total: int, **kwargs) -> list[dict]:
    """Call ``run_benchmark`` with rich progress bars: one per extraction, one for the cells."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        bars: dict[str, int] = {}
        cells = progress.add_task("cells", total=total)

        def on_event(kind: str, info: dict) -> None:
            if kind == "extract-start":
                bars[info["name"]] = progress.add_task(f"extract {info['name']}", total=info["total"])
            elif kind == "extract-progress":
                progress.update(bars[info["name"]], completed=info["done"])
            elif kind == "extract-done":
                how = "cached" if info.get("cached") else f"{info['seconds']:.0f} s"
                progress.console.print(f"features {info['name']}: {info['dims']:,} dims, {info['img_per_s']:,.0f} img/s ({how})")
            elif kind == "cell-done":
                acc = (info.get("PrivateTest") or {}).get("accuracy", float("nan"))
                how = "cached" if info.get("cached") else f"fit {info.get('fit_seconds', float('nan')):.0f} s"
                progress.console.print(f"{info['cell']}: PrivateTest accuracy {acc:.4f} ({how})", highlight=False)
                progress.advance(cells)

        return run(dataset, grid, on_event=on_event, **kwargs)


def _print_benchmark(records: list[dict]) -> None:
    from rich.table import Table

    from fer_features.benchmark.report import HEADERS, format_value, results_frame, without_empty_cv

    frame = without_empty_cv(results_frame(records))
    table = Table(title="fer benchmark (PublicTest selects, PrivateTest reports)")
    for col in frame.columns:
        table.add_column(HEADERS[col], justify="left" if col in ("features", "clf") else "right", no_wrap=col == "features")
    best = frame["public_accuracy"].idxmax() if frame["public_accuracy"].notna().any() else None
    for i, row in frame.iterrows():
        table.add_row(*(format_value(col, v) for col, v in row.items()), style="bold" if i == best else None)
    wide = console if console.is_terminal else Console(width=max(console.width, 180))
    wide.print(table)


@app.command("list")
def list_choices() -> None:
    """List the feature extractors and classifiers that specs can name."""
    from fer_features.classifiers import list_classifiers
    from fer_features.features import list_features

    console.print("[bold]features[/] (join with '+', e.g. hog+lbp+landmarks)")
    for name, desc in list_features().items():
        console.print(f"  {name:12s} {desc}", highlight=False)
    console.print("[bold]classifiers[/]")
    for name, desc in list_classifiers().items():
        console.print(f"  {name:12s} {desc}", highlight=False)


# --------------------------------------------------------------------------- video, webcam and `fer serve`


def _predict_video(source: Path | None, model: Path | None, out: Path | None, annotate: Path | None, every: int,
                   device: int, json_out: bool, options: dict) -> None:  # fmt: skip
    """``fer predict VIDEO`` (``source``) or ``fer predict --webcam`` (``source=None``): CSV, annotated video, fps."""
    from fer_features.persist import ModelError, default_model_path, load_model
    from fer_features.video import VIDEO_SUFFIXES, VideoError, capture_info, is_video, open_capture
    from fer_features.video import predict_video, run_webcam

    if source is not None and not source.is_file():
        fail(f"{source}: no such file")
    if annotate is not None and source is None:
        fail("--annotate is for photos and videos, not --webcam")
    if annotate is not None and not is_video(annotate):
        fail(f"--annotate {annotate}: give a video file name ({', '.join(VIDEO_SUFFIXES[:4])}, …) for a video")
    try:
        pipe = load_model(model or default_model_path())
    except ModelError as exc:
        fail(str(exc))
    try:
        if source is None:
            err_console.print(f"webcam {device}: q or Esc in the window to stop")
            summary = run_webcam(pipe, device, out_csv=out, every=every, **options)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            cap = open_capture(source)
            total = capture_info(cap)["frames"] or None
            cap.release()
            columns = (
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
            )  # fmt: skip
            with Progress(*columns, console=err_console) as progress:
                task = progress.add_task(f"frames of {source.name}", total=total, rate="")
                start = time.perf_counter()

                def tick(index, frame, faces):
                    rate = (index + 1) / (time.perf_counter() - start)
                    progress.update(task, completed=index + 1, rate=f"{rate:.1f} frames/s")

                summary = predict_video(
                    pipe, source, out_csv=out, annotate_path=annotate, every=every, on_frame=tick, **options
                )
    except (VideoError, FileNotFoundError) as exc:
        fail(str(exc))
    result = {
        "source": str(source) if source is not None else f"webcam {device}",
        "frames": summary.frames,
        "analysed": summary.analysed,
        "faces": summary.faces,
        "seconds": summary.seconds,
        "frames_per_second": summary.fps,
        "analysed_per_second": summary.analysed_fps,
        "labels": summary.labels,
        "video": summary.source,
        "csv": str(out) if out else None,
        "annotated": str(annotate) if annotate else None,
    }
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(
        f"{result['source']}: {summary.frames} frames ({summary.analysed} analysed, {summary.faces} faces) in "
        f"{summary.seconds:.1f} s: [bold]{summary.fps:.1f} frames/s[/]"
    )
    if summary.labels:
        counts = sorted(summary.labels.items(), key=lambda kv: -kv[1])
        console.print("first face per analysed frame: " + ", ".join(f"{k} {v}" for k, v in counts))
    for what, path in (("predictions", out), ("annotated video", annotate)):
        if path:
            console.print(f"{what}: {path}")


@app.command()
def serve(
    model: Annotated[Path | None, typer.Option(help="Trained pipeline; default $FER_MODEL or models/fer-default.joblib.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest upload, in MiB.")] = 10.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image, in pixels (width x height).")] = 25_000_000,
    detector: Annotated[Detector, typer.Option(help="dlib face detector: HOG (fast) or MMOD CNN (robust, slow).")] = Detector.hog,
    upsample: Annotated[int, typer.Option(min=0, max=2, help="Default times to double an image before detection.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
) -> None:
    """Serve the model over HTTP: JSON API ([bold]POST /predict[/], [bold]GET /health[/], docs at /docs) and a demo page at /.

    The page has three tabs: Upload (a photo → boxes and probability bars), Webcam (the
    browser's camera, a few frames a second) and FaceMatch (hold the emotion shown; scored 0-100).
    Browsers allow the camera on http://127.0.0.1 or localhost only (else https).
    """
    import socket

    from fer_features.persist import ModelError, default_model_path, load_model

    try:
        import uvicorn

        from fer_features.serve import create_app
    except ImportError as exc:
        fail(f"fer serve needs fastapi, uvicorn and python-multipart ({exc}): pip install 'fer-features[serve]'")
    path = model or default_model_path()
    try:
        pipe = load_model(path)
    except ModelError as exc:
        fail(str(exc))
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host")
    limits = dict(max_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels)
    app_ = create_app(path, model=pipe, **limits, detector=detector.value, upsample=upsample)
    console.print(f"serving [bold]{path}[/] on http://{host}:{port} (API docs: /docs; Ctrl+C stops)")
    uvicorn.run(app_, host=host, port=port, log_level=log_level)


# --------------------------------------------------------------------------- fer data (issue 5)

data_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich", help="Look at data sets before training on them.")
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    path: Annotated[Path, typer.Argument(help=_DATA_HELP)],
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    out: Annotated[Path | None, typer.Option(help="Folder for the PNGs (default: no plots).")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in the sample grid.")] = 8,
    blank_std: Annotated[float, typer.Option(help="Pixel std (grey levels) under which an image is near-blank.")] = 2.0,
    near: Annotated[bool, typer.Option(help="Also look for near duplicates (re-encoded copies).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the sample grid and of a photo folder's split.")] = 0,
    n_jobs: Annotated[int, typer.Option(help="Workers for face detection in photo folders; -1 all cores.")] = -1,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Counts per class and split, data-quality findings (unreadable, near-blank, duplicate images) and plots.

    With [bold]--out DIR[/]: class_histogram.png, sample_grid.png and mean_faces.png. Unreadable
    files are reported, not fatal.
    """
    from fer_features.inspect import inspect_dataset, write_plots

    t0 = time.perf_counter()
    dataset = _load_data(path, True, format=data_format.value, label_mode=label_mode.value, classes=classes, seed=seed, n_jobs=n_jobs)
    report = inspect_dataset(dataset, blank_std=blank_std, near_duplicates=near)
    if out is not None:
        report["plots"] = write_plots(dataset, out, per_class=per_class, seed=seed)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    usages = list(report["counts"])
    table = Table(title=f"{path}: {report['n_images']:,} images")
    table.add_column("class")
    for u in [*usages, "total"]:
        table.add_column(u, justify="right")
    for c in report["classes"]:
        row = [report["counts"][u][c] for u in usages]
        table.add_row(c, *[f"{v:,}" for v in row], f"{sum(row):,}")
    table.add_row("total", *[f"{sum(report['counts'][u].values()):,}" for u in usages], f"{report['n_images']:,}")
    console.print(table)
    console.print(f"unreadable files: {len(report['unreadable'])}")
    if report["photo_problems"]:
        p = report["photo_problems"]
        console.print(f"photos: {p['photos']}, no face {p['no_face']}, several faces {p['several_faces']}" + (f" (list: {p['problems_csv']})" if p["problems_csv"] else ""))
    b = report["blank"]
    console.print(f"near-blank images (pixel std < {b['threshold_std']:g}): {b['count']} " + ", ".join(f"{u} {n}" for u, n in b["by_split"].items() if n))
    for key, title in (("exact_duplicates", "exact duplicates"), ("near_duplicates", f"near duplicates (mean |diff| < {report.get('near_duplicates', {}).get('max_mad', 0):g})")):
        d = report.get(key)
        if d is None:
            continue
        pairs = ", ".join(f"{k} {v}" for k, v in d["cross_split_pairs"].items())
        console.print(
            f"{title}: {d['groups']} groups of {d['images']} images ({d['redundant_images']} redundant); within a split "
            f"{d['within_split_groups']}, across splits {d['cross_split_groups']}" + (f" ({pairs})" if pairs else "")
            + f"; with conflicting labels {d['conflicting_label_groups']}",
            highlight=False,
        )
    for name, file in report.get("plots", {}).items():
        console.print(f"{name}: {file}", highlight=False)
    console.print(f"{report['seconds']:.1f} s")


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

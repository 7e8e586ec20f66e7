"""The CNN's part of a training run: its parameters, its checkpoint trained first for the ``cnn`` feature, and its model-card entries."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from fer_features.config import (
    CNN_EPOCHS,
)
from fer_features.data.fer2013 import FERDataset
from fer_features.events import EventCallback, no_events


def cnn_card(ckpt: dict) -> dict:
    """The model-card entries of a CNN checkpoint: its config, epochs, selection score, device, precision, time,
    and the checkpoints it started from (``init``) or was distilled from (``teacher``)."""
    keys = ("config", "history", "best_epoch", "val_accuracy", "device", "precision", "soft_labels", "train_seconds",
            "init", "teacher")  # fmt: skip
    return {k: ckpt[k] for k in keys if k in ckpt}


def ensemble_card(ensemble) -> dict:
    """The model-card entries of a fitted :class:`~fer_features.cnn.ensemble.CNNEnsembleClassifier`:
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
        For an item without ``=`` or a name that is not a :class:`~fer_features.cnn.recipe.TrainConfig` field
        (``preset``, ``epochs``, ``precision`` and ``seed`` have options of their own).
    """
    import json

    if not items:
        return {}  # no CNN parameter: torch is not imported
    from fer_features.cnn.recipe import TrainConfig

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
    from fer_features.cnn.checkpoints import save_checkpoint
    from fer_features.cnn.classifier import CNNClassifier

    emit = on_event or no_events
    params = {"epochs": CNN_EPOCHS, **cnn_params}
    net = CNNClassifier(seed=seed, resume_path=str(resume_path) if resume_path else None, **params)
    emit("fit-start", {"epochs": params["epochs"]})
    net.fit(X_train, y_train, X_val=X_val, y_val=y_val, on_epoch=lambda record: emit("epoch", record), **(soft or {}))
    emit("fit-done", {})
    save_checkpoint(net.checkpoint_, path)
    return cnn_card(net.checkpoint_)

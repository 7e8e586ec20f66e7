"""Training the CNN end to end on face crops: augmentation, schedule, selection, resume.

Checkpoint selection and early stopping look at the validation split only (PublicTest in the
standard protocol); the test split is never seen here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fer_features.cnn.checkpoints import CHECKPOINT_FORMAT, _float_state, load_checkpoint, net_from_checkpoint, same_net
from fer_features.cnn.net import build_net
from fer_features.cnn.recipe import TrainConfig, augment, mix_batch, predict_logits, soft_cross_entropy, to_tensor
from fer_features.torch_utils import (
    autocast,
    resolve_device,
    set_cpu_threads,
    to_channels_last,
    use_bf16,
)

#: Each epoch's record is logged here as one JSON line (level INFO), e.g. for a long run's log file.
logger = logging.getLogger("fer_features.cnn")


#: Test-time augmentation modes: none, the mirror image, or ten crops (4 corners + centre, each
#: also mirrored; Krizhevsky et al. 2012).


def train_cnn(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    config: TrainConfig | None = None,
    device: str = "auto",
    resume_path: str | os.PathLike | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    soft_train: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    views_train: np.ndarray | None = None,
) -> dict:
    """Train a :class:`~fer_features.cnn.net.FERNet` and return its best checkpoint.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, 48, 48), dtype uint8
    y_train : ndarray of shape (n_train,), dtype int
        Class indices 0..n_classes-1.
    X_val, y_val
        The selection split (PublicTest): the epoch with the best accuracy on it is kept, and
        training stops after ``config.patience`` epochs without improvement.
    config : TrainConfig, optional
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
    resume_path : path-like, optional
        Training state is saved here after every epoch (atomically); if the file exists and
        holds a run with the same config and data, training resumes from it exactly (same
        weights, optimizer, schedule and random streams). Removed when training ends.
    on_epoch : callable, optional
        Called with each epoch's record (``epoch``, ``loss``, ``val_accuracy``, ``seconds``,
        ``lr``, and where the seconds went: ``augment_seconds``, ``step_seconds`` (forward,
        backward, optimizer), ``val_seconds``).
    soft_train : ndarray of shape (n_train, n_classes), dtype float, optional
        Target distributions (e.g. FERPlus votes) to train on with :func:`soft_cross_entropy`
        instead of the one-hot ``y_train``; selection still scores ``y_val``.
    classes : sequence of str, optional
        The name of each class index. Needed only to start from a checkpoint
        (``config.init_checkpoint``) with other classes: rows are matched by these names.
    views_train : ndarray of shape (n_train, 48, 48), dtype uint8, optional
        Each Training face as the photo pipeline frames it
        (:func:`~fer_features.data.photos.pipeline_views`); each image is replaced by its view
        with probability ``config.pipeline_views``. Needed when that is above 0.

    Returns
    -------
    dict
        The checkpoint: ``format``, ``config``, ``state_dict`` (float16 on the CPU), ``mean``,
        ``std``, ``n_classes``, ``history``, ``best_epoch``, ``val_accuracy``, ``device``,
        ``precision`` (the arithmetic used), ``train_seconds``. Save it with :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        If ``soft_train`` or ``views_train`` does not have one row per training image,
        ``config.pipeline_views`` is on without ``views_train``, or ``config.init_checkpoint``
        holds another network, or other classes while ``classes`` (or its own) are unknown.
    FileNotFoundError
        If ``config.init_checkpoint`` names a missing file.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from fer_features.persist.outputs import atomic_path

    cfg = config or TrainConfig()
    dev = resolve_device(device)
    if dev.type == "cpu":
        set_cpu_threads()
    bf16 = use_bf16(dev, cfg.precision)
    torch.manual_seed(cfg.seed)
    n_classes = int(max(np.max(y_train), np.max(y_val)) + 1)
    if soft_train is not None:
        soft_train = np.asarray(soft_train, dtype=np.float32)
        if soft_train.ndim != 2 or len(soft_train) != len(y_train):
            raise ValueError(f"soft_train must have shape (n_train, n_classes), got {soft_train.shape} for {len(y_train)} images")
        n_classes = max(n_classes, soft_train.shape[1])
    if cfg.pipeline_views > 0:
        if views_train is None:
            raise ValueError("config.pipeline_views needs views_train (fer_features.data.photos.pipeline_views of the Training faces)")
        if np.shape(views_train) != np.shape(X_train):
            raise ValueError(f"views_train must have the shape of X_train {np.shape(X_train)}, got {np.shape(views_train)}")
    mean = float(X_train.mean() / 255.0)
    std = float(X_train.std() / 255.0) or 1.0
    init, init_rows = _init_checkpoint(cfg, n_classes, classes)
    if init is not None:  # the weights expect the inputs normalised as they were trained
        mean, std = float(init["mean"]), float(init["std"])
    xt, yt = to_tensor(X_train, mean, std), torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    xv, yv = to_tensor(X_val, mean, std), torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    tt = torch.from_numpy(soft_train / soft_train.sum(1, keepdims=True).clip(1e-12)) if soft_train is not None else F.one_hot(yt, n_classes).float()
    teacher = None
    if cfg.teacher:
        teacher, teacher_probs = _teacher_targets(cfg, X_train, n_classes, dev, "bf16" if bf16 else "fp32")
        tt = (1.0 - cfg.distill) * tt + cfg.distill * teacher_probs

    net = build_net({**cfg.net, "n_classes": n_classes})
    if init is not None:
        _load_init(net, init, init_rows, cfg.init_checkpoint)
    net = to_channels_last(net.to(dev), cfg.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    ema_net = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    loader_gen = torch.Generator().manual_seed(cfg.seed)
    # drop_last keeps batch norm away from a last batch of one image, unless that leaves no batch
    views = [to_tensor(views_train, mean, std)] if cfg.pipeline_views > 0 else []
    loader = DataLoader(
        TensorDataset(xt, tt, *views), batch_size=cfg.batch_size, shuffle=True, drop_last=len(xt) > cfg.batch_size, generator=loader_gen
    )
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15, anneal_strategy="cos"
    )
    aug_gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)

    state = {"epoch": 0, "history": [], "best_accuracy": -1.0, "best_epoch": -1, "best_state": None, "seconds": 0.0}
    # A resume file is used only for the same config and the same data.
    data_key = [len(xt), len(xv), round(mean, 6), round(std, 6), int(yt.sum()), int(yv.sum()), round(float(tt.sum()), 3)]
    if soft_train is not None:  # distributions sum to 1 whatever they are: tell them apart by their values
        data_key.append(hashlib.sha256(soft_train.tobytes()).hexdigest()[:16])
    if views:
        data_key.append(hashlib.sha256(np.ascontiguousarray(views_train).tobytes()).hexdigest()[:16])
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, map_location="cpu", weights_only=False)
        if _saved_config(saved.get("config")) == asdict(cfg) and saved.get("data_key") == data_key:
            net.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if ema_net is not None:
                ema_net.load_state_dict(saved["ema"])
            loader_gen.set_state(saved["loader_gen"])
            aug_gen.set_state(saved["aug_gen"])
            torch.set_rng_state(saved["torch_rng"])  # dropout draws from the global generator
            if dev.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"], dev)
            state = saved["state"]

    eval_net = ema_net.module if ema_net is not None else net
    for epoch in range(state["epoch"], cfg.epochs):
        if epoch - state["best_epoch"] > cfg.patience and state["best_epoch"] >= 0:
            break
        start = time.perf_counter()
        net.train()
        total, count, aug_s, step_s = 0.0, 0, 0.0, 0.0
        for xb, tb, *vb in loader:
            t0 = time.perf_counter()
            xb, tb = xb.to(dev, non_blocking=True), tb.to(dev, non_blocking=True)
            if vb:  # the photo pipeline's framing in place of FER2013's, image by image
                pick = torch.rand(len(xb), device=dev, generator=aug_gen) < cfg.pipeline_views
                xb = torch.where(pick[:, None, None, None], vb[0].to(dev, non_blocking=True), xb)
            xb = augment(xb, cfg, aug_gen, mean=mean, std=std)
            xb, tb = mix_batch(xb, tb, cfg, aug_gen)
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            with autocast(dev, "bf16" if bf16 else "fp32"):
                loss = soft_cross_entropy(net(xb), tb, cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema_net is not None:
                ema_net.update_parameters(net)
            total += float(loss.detach()) * len(tb)
            count += len(tb)
            aug_s, step_s = aug_s + t1 - t0, step_s + time.perf_counter() - t1
        t2 = time.perf_counter()
        precision = "bf16" if bf16 else "fp32"
        val_acc = float((predict_logits(eval_net, xv, dev, precision=precision, channels_last=cfg.channels_last).argmax(1) == yv).float().mean())
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch + 1,
            "loss": round(total / max(count, 1), 4),
            "val_accuracy": round(val_acc, 4),
            "seconds": round(seconds, 1),
            "lr": round(scheduler.get_last_lr()[0], 5),
            "augment_seconds": round(aug_s, 2),
            "step_seconds": round(step_s, 2),
            "val_seconds": round(time.perf_counter() - t2, 2),
        }
        state["history"].append(record)
        state["seconds"] += seconds
        if val_acc > state["best_accuracy"]:
            best_state = {k: v.detach().cpu().contiguous() for k, v in eval_net.state_dict().items()}
            state.update(best_accuracy=val_acc, best_epoch=epoch, best_state=copy.deepcopy(best_state))
        state["epoch"] = epoch + 1
        logger.info("epoch %s", json.dumps(record))
        if on_epoch is not None:
            on_epoch(record)
        if resume_path is not None:
            with atomic_path(resume_path) as tmp:
                torch.save(
                    {
                        "config": asdict(cfg),
                        "data_key": data_key,
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                        "model": net.state_dict(),
                        "ema": ema_net.state_dict() if ema_net is not None else None,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "loader_gen": loader_gen.get_state(),
                        "aug_gen": aug_gen.get_state(),
                        "state": state,
                    },
                    tmp,
                )

    best = state["best_state"] or {k: v.detach().cpu().contiguous() for k, v in eval_net.state_dict().items()}
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(cfg),
        "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in best.items()},
        "mean": mean,
        "std": std,
        "n_classes": n_classes,
        "history": state["history"],
        "best_epoch": state["best_epoch"] + 1,
        "val_accuracy": state["best_accuracy"],
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "precision": "bf16" if bf16 else "fp32",
        "soft_labels": soft_train is not None,
        "train_seconds": round(state["seconds"], 1),
    }
    if teacher is not None:
        checkpoint["teacher"] = {"path": cfg.teacher, "val_accuracy": teacher.get("val_accuracy"),
                                 "train_seconds": teacher.get("train_seconds")}  # fmt: skip
        if "members" in teacher:
            checkpoint["teacher"]["members"] = teacher["members"]
    if init is not None:
        checkpoint["init"] = {
            "path": cfg.init_checkpoint,
            "val_accuracy": init.get("val_accuracy"),
            "train_seconds": init.get("train_seconds"),
            "epochs": len(init.get("history", [])),
        }
        if init_rows is not None:
            checkpoint["init"]["classes"] = list(init["classes"])
    if resume_path is not None and resume_path.exists():
        resume_path.unlink()
    return checkpoint


def _saved_config(config: dict | None) -> dict | None:
    """A stored config as :func:`~dataclasses.asdict` writes it today: the fields added to
    :class:`TrainConfig` since it was written take their defaults, which were in force then."""
    if config is None:
        return None
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    return {**defaults, **config}


def _teacher_targets(cfg: TrainConfig, X_train: np.ndarray, n_classes: int, dev, precision: str) -> tuple[dict, torch.Tensor]:
    """The teacher and its class distributions on the Training faces, ``(n_train, n_classes)`` float32.

    Each face's logits are averaged with its mirror image's (flip TTA), divided by
    ``cfg.distill_temperature`` and passed through a softmax. With several comma-separated paths
    (an ensemble teacher) the distributions are averaged, and the returned record has the
    ``members`` (path, PublicTest accuracy, training seconds) and their mean ``val_accuracy``.
    """
    paths = [p.strip() for p in cfg.teacher.split(",") if p.strip()]
    records, probs = [], None
    for path in paths:
        ckpt = load_checkpoint(path)
        if int(ckpt["n_classes"]) != n_classes:
            raise ValueError(f"{path}: the teacher has {ckpt['n_classes']} classes, this run's data {n_classes}")
        channels_last = bool(ckpt["config"].get("channels_last", True))
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):  # the run's random streams stay as they were
            net = to_channels_last(net_from_checkpoint(ckpt, dev), channels_last)
            xt = to_tensor(X_train, float(ckpt["mean"]), float(ckpt["std"]))  # the teacher's own normalisation
            logits = predict_logits(net, xt, dev, tta="flip", precision=precision, channels_last=channels_last)
        member = torch.softmax(logits.float() / cfg.distill_temperature, dim=1)
        probs = member if probs is None else probs + member
        records.append({"path": path, "val_accuracy": ckpt.get("val_accuracy"), "train_seconds": ckpt.get("train_seconds")})
    if len(records) == 1:
        return ckpt, probs
    accuracies = [r["val_accuracy"] for r in records if r["val_accuracy"] is not None]
    record = {
        "val_accuracy": float(np.mean(accuracies)) if accuracies else None,
        "train_seconds": sum(r["train_seconds"] or 0.0 for r in records),
        "members": records,
    }
    return record, probs / len(records)


def _init_checkpoint(
    cfg: TrainConfig, n_classes: int, classes: Sequence[str] | None = None
) -> tuple[dict | None, list[int | None] | None]:
    """The checkpoint a warm restart or fine-tuning starts from (``cfg.init_checkpoint``), checked
    against the run, and, when its classes are not the run's, the row of each of the run's classes
    in its classifier (None for a class it does not have); ``(None, None)`` without one."""
    if not cfg.init_checkpoint:
        return None, None
    init = load_checkpoint(cfg.init_checkpoint)
    theirs, ours = dict(init["config"]["net"]), dict(cfg.net)
    if not same_net(theirs, ours):
        raise ValueError(f"{cfg.init_checkpoint}: its network {theirs} is not this run's {ours}; pass the same preset")
    their_classes = [str(c) for c in init["classes"]] if init.get("classes") is not None else None
    our_classes = [str(c) for c in classes] if classes is not None else None
    if their_classes is None or our_classes is None:
        if int(init["n_classes"]) != n_classes:
            raise ValueError(
                f"{cfg.init_checkpoint}: it has {init['n_classes']} classes, this run's data {n_classes}, "
                "and without both sets of class names its classifier rows cannot be matched"
            )
        return init, None
    if their_classes == our_classes:
        return init, None
    return init, [their_classes.index(c) if c in their_classes else None for c in our_classes]


def _load_init(net: torch.nn.Module, init: dict, rows: list[int | None] | None, path: str) -> None:
    """Load ``init``'s weights (from ``path``) into ``net``; with ``rows`` (a transfer, see
    :func:`_init_checkpoint`) every layer but the classifier, whose rows are copied where the
    class exists in ``init``, the others left as built."""
    state = _float_state(init)
    if rows is None:
        net.load_state_dict(state)
        return
    weight, bias = state.pop("classifier.weight"), state.pop("classifier.bias")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"classifier.weight", "classifier.bias"}:
        raise ValueError(f"{path}: layers do not match ({missing or unexpected})")
    with torch.no_grad():
        for row, their_row in enumerate(rows):
            if their_row is not None:
                net.classifier.weight[row] = weight[their_row]
                net.classifier.bias[row] = bias[their_row]

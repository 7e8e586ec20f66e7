"""Training the CNN end to end on face crops: augmentation, schedule, selection, resume.

Checkpoint selection and early stopping look at the validation split only (PublicTest in the
standard protocol); the test split is never seen here.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fer_features.cnn.net import PRESETS, build_net
from fer_features.config import CNN_EPOCHS
from fer_features.torch_utils import autocast as _autocast
from fer_features.torch_utils import batched_forward, resolve_device, set_cpu_threads  # noqa: F401  (re-exported)

CHECKPOINT_FORMAT = "fer-features-cnn/1"


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (stored in the checkpoint).

    Attributes
    ----------
    preset : {'small', 'large'}
        Network size (:data:`fer_features.cnn.net.PRESETS`).
    epochs : int
        Maximum epochs; early stopping may end sooner.
    batch_size : int
    lr : float
        Peak learning rate of SGD with Nesterov momentum 0.9 under a one-cycle cosine schedule.
    weight_decay : float
    label_smoothing : float
    max_rotation : float
        Random in-plane rotation, degrees (uniform in ±this).
    max_shift : float
        Random translation, pixels (uniform in ±this), like a random crop with that padding.
    max_scale : float
        Random zoom, fraction (uniform in 1 ± this).
    erasing : float
        Probability of random erasing of a rectangle of 2-20% of the face (Zhong et al. 2020).
    patience : int
        Stop after this many epochs without a better validation accuracy.
    seed : int
    """

    preset: str = "small"
    epochs: int = CNN_EPOCHS
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    max_rotation: float = 10.0
    max_shift: float = 4.0
    max_scale: float = 0.1
    erasing: float = 0.25
    patience: int = 10
    seed: int = 0
    net: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown CNN preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if not self.net:
            self.net = dict(PRESETS[self.preset])


def to_tensor(X: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """``(n, h, w)`` uint8 → ``(n, 1, h, w)`` float32, standardised."""
    # a copy: X may be a read-only memory map (joblib workers), which torch will not wrap
    return (torch.from_numpy(np.array(X, dtype=np.uint8, copy=True)).float().div_(255.0).sub_(mean).div_(std)).unsqueeze(1)


def augment(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random flip, rotation, zoom and shift (one affine warp per image), then random erasing.

    Parameters
    ----------
    x : Tensor of shape (n, 1, h, w), float
    cfg : TrainConfig
    generator : torch.Generator
        On x's device; makes the augmentation reproducible.

    Returns
    -------
    Tensor of shape (n, 1, h, w)
    """
    n, _, h, w = x.shape
    dev = x.device

    def uniform(lo, hi):
        return torch.rand(n, device=dev, generator=generator) * (hi - lo) + lo

    angle = uniform(-cfg.max_rotation, cfg.max_rotation) * math.pi / 180
    scale = uniform(1 - cfg.max_scale, 1 + cfg.max_scale)
    flip = torch.where(torch.rand(n, device=dev, generator=generator) < 0.5, -1.0, 1.0)
    tx = uniform(-cfg.max_shift, cfg.max_shift) * 2 / w
    ty = uniform(-cfg.max_shift, cfg.max_shift) * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )  # maps output grid to input: flip x, rotate, zoom, shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.erasing > 0:
        area = uniform(0.02, 0.2) * h * w
        aspect = torch.exp(uniform(math.log(0.3), math.log(3.3)))
        eh = torch.sqrt(area * aspect).clamp(1, h).long()
        ew = torch.sqrt(area / aspect).clamp(1, w).long()
        top = (torch.rand(n, device=dev, generator=generator) * (h - eh + 1)).long()
        left = (torch.rand(n, device=dev, generator=generator) * (w - ew + 1)).long()
        rows = torch.arange(h, device=dev)[None, :, None]
        cols = torch.arange(w, device=dev)[None, None, :]
        in_rows = (rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
        in_cols = (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
        chosen = (torch.rand(n, device=dev, generator=generator) < cfg.erasing)[:, None, None]
        box = in_rows & in_cols & chosen  # (n, h, w)
        x = x.masked_fill(box[:, None], 0.0)
    return x


def predict_logits(net, X: torch.Tensor, device: torch.device, batch_size: int = 512, tta: bool = False) -> torch.Tensor:
    """Logits of standardised images ``(n, 1, h, w)``, in eval mode, gathered on the CPU.

    With ``tta``, the logits of each image and of its mirror image are averaged.
    """
    if len(X) == 0:
        return torch.zeros((0, net.classifier.out_features))

    def forward(xb):
        logits = net(xb).float()
        return (logits + net(torch.flip(xb, dims=[3])).float()) / 2 if tta else logits

    return batched_forward(forward, X, device, batch_size, net=net)


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
        holds a run with the same config, training resumes from it. Removed when training ends.
    on_epoch : callable, optional
        Called with each epoch's record (``epoch``, ``loss``, ``val_accuracy``, ``seconds``, ``lr``).

    Returns
    -------
    dict
        The checkpoint: ``format``, ``config``, ``state_dict`` (float16 on the CPU), ``mean``,
        ``std``, ``n_classes``, ``history``, ``best_epoch``, ``val_accuracy``, ``device``,
        ``train_seconds``. Save it with :func:`save_checkpoint`.
    """
    from fer_features.persist import atomic_path

    cfg = config or TrainConfig()
    dev = resolve_device(device)
    if dev.type == "cpu":
        set_cpu_threads()
    torch.manual_seed(cfg.seed)
    n_classes = int(max(np.max(y_train), np.max(y_val)) + 1)
    mean = float(X_train.mean() / 255.0)
    std = float(X_train.std() / 255.0) or 1.0
    xt, yt = to_tensor(X_train, mean, std), torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    xv, yv = to_tensor(X_val, mean, std), torch.as_tensor(np.asarray(y_val), dtype=torch.long)

    net = build_net({**cfg.net, "n_classes": n_classes}).to(dev)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    loader_gen = torch.Generator().manual_seed(cfg.seed)
    # drop_last keeps batch norm away from a last batch of one image, unless that leaves no batch
    loader = DataLoader(
        TensorDataset(xt, yt), batch_size=cfg.batch_size, shuffle=True, drop_last=len(xt) > cfg.batch_size, generator=loader_gen
    )
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15, anneal_strategy="cos"
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    aug_gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)

    state = {"epoch": 0, "history": [], "best_accuracy": -1.0, "best_epoch": -1, "best_state": None, "seconds": 0.0}
    # A resume file is used only for the same config and the same data.
    data_key = [len(xt), len(xv), round(mean, 6), round(std, 6), int(yt.sum()), int(yv.sum())]
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, map_location="cpu", weights_only=False)
        if saved.get("config") == asdict(cfg) and saved.get("data_key") == data_key:
            net.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            loader_gen.set_state(saved["loader_gen"])
            aug_gen.set_state(saved["aug_gen"])
            torch.set_rng_state(saved["torch_rng"])  # dropout draws from the global generator
            if dev.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"], dev)
            state = saved["state"]

    for epoch in range(state["epoch"], cfg.epochs):
        if epoch - state["best_epoch"] > cfg.patience and state["best_epoch"] >= 0:
            break
        start = time.perf_counter()
        net.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            xb = augment(xb, cfg, aug_gen)
            with _autocast(dev):
                loss = loss_fn(net(xb).float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(yb)
            count += len(yb)
        val_acc = float((predict_logits(net, xv, dev).argmax(1) == yv).float().mean())
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch + 1,
            "loss": round(total / max(count, 1), 4),
            "val_accuracy": round(val_acc, 4),
            "seconds": round(seconds, 1),
            "lr": round(scheduler.get_last_lr()[0], 5),
        }
        state["history"].append(record)
        state["seconds"] += seconds
        if val_acc > state["best_accuracy"]:
            state.update(best_accuracy=val_acc, best_epoch=epoch, best_state=copy.deepcopy({k: v.cpu() for k, v in net.state_dict().items()}))
        state["epoch"] = epoch + 1
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
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "loader_gen": loader_gen.get_state(),
                        "aug_gen": aug_gen.get_state(),
                        "state": state,
                    },
                    tmp,
                )

    best = state["best_state"] or {k: v.cpu() for k, v in net.state_dict().items()}
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
        "train_seconds": round(state["seconds"], 1),
    }
    if resume_path is not None and resume_path.exists():
        resume_path.unlink()
    return checkpoint


def save_checkpoint(checkpoint: dict, path: str | os.PathLike) -> Path:
    """Write a checkpoint from :func:`train_cnn` atomically (float16 weights: a few MiB)."""
    from fer_features.persist import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, onto the CPU.

    Raises
    ------
    FileNotFoundError
        If the file is missing; the message says how to make one.
    ValueError
        If it is not a fer-features CNN checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such CNN checkpoint; train one with `fer train --clf cnn --out models/cnn.joblib` "
            "(it writes models/cnn.pt)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable CNN checkpoint ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a fer-features CNN checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def net_from_checkpoint(ckpt: dict, device: torch.device) -> torch.nn.Module:
    """Rebuild the network of a checkpoint in float32 on ``device``, in eval mode."""
    net = build_net({**ckpt["config"]["net"], "n_classes": ckpt["n_classes"]})
    net.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()})
    return net.to(device).eval()

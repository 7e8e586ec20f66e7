"""Training the CNN end to end on face crops: augmentation, schedule, selection, resume.

Checkpoint selection and early stopping look at the validation split only (PublicTest in the
standard protocol); the test split is never seen here.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fer_features.cnn.net import build_net
from fer_features.cnn.presets import PRESETS
from fer_features.config import CNN_EPOCHS
from fer_features.torch_utils import (  # noqa: F401  (re-exported: their home is torch_utils)
    PRECISIONS,
    autocast,
    batched_forward,
    native_bf16,
    resolve_device,
    set_cpu_threads,
    to_channels_last,
    use_bf16,
)

CHECKPOINT_FORMAT = "fer-features-cnn/1"

#: Each epoch's record is logged here as one JSON line (level INFO), e.g. for a long run's log file.
logger = logging.getLogger("fer_features.cnn")

#: Test-time augmentation modes: none, the mirror image, or ten crops (4 corners + centre, each
#: also mirrored; Krizhevsky et al. 2012).
from fer_features.config import TTA_MODES  # noqa: E402


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (stored in the checkpoint).

    Attributes
    ----------
    preset : {'small', 'large'}
        Network size (:data:`fer_features.cnn.presets.PRESETS`).
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
    precision : {'auto', 'bf16', 'fp32'}
        Arithmetic of the forward and backward passes. ``'auto'``: bf16 autocast on CUDA and on
        CPUs with native bf16 instructions (:func:`native_bf16`), float32 elsewhere. Weights,
        optimizer state and the loss stay float32 in every mode.
    channels_last : bool
        NHWC memory layout for the convolutions (faster in oneDNN on CPU and on tensor cores).
    mixup : float
        Alpha of the Beta(alpha, alpha) mixing weight of mixup (Zhang et al. 2018); 0 turns it off.
    cutmix : float
        Alpha of CutMix (Yun et al. 2019); 0 turns it off. With both on, each batch uses one of
        them at random.
    ema : float
        Decay per optimizer step of an exponential moving average of the weights (and batch-norm
        statistics); 0 turns it off. When on, the averaged network is the one validated, selected
        and saved.
    init_checkpoint : str
        Path of a checkpoint (:func:`save_checkpoint`) whose weights start this run instead of a
        random initialisation: a warm restart of the schedule (SGDR, Loshchilov & Hutter 2017;
        each cycle's end is a snapshot, Huang et al. 2017). Its network must match this run's, and
        its input normalisation is kept. When its classes differ from the run's (fine-tuning,
        e.g. a FER2013 network on FERPlus's eight classes), every layer but the classifier is
        loaded and each class the two share keeps its classifier row, matched by name; the
        other rows start at random. ``''``: random initialisation.
    teacher : str
        Path of a checkpoint of a (larger) network whose predictions on the Training faces
        (mirror-averaged) become part of the targets: knowledge distillation (Hinton et al. 2015)
        in its offline form, the teacher's distribution computed once before training. Several
        paths separated by commas make an ensemble teacher: the mean of their distributions
        (each at the temperature; Hinton et al. 2015 distil an ensemble the same way). ``''``: none.
    distill : float
        Weight of the teacher's distribution in each target, ``(1 - distill) * label +
        distill * teacher``.
    distill_temperature : float
        Temperature the teacher's logits are divided by before the softmax (softer above 1).
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
    precision: str = "auto"
    channels_last: bool = True
    mixup: float = 0.0
    cutmix: float = 0.0
    ema: float = 0.0
    init_checkpoint: str = ""
    teacher: str = ""
    distill: float = 0.5
    distill_temperature: float = 2.0
    net: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown CNN preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1), got {self.ema!r}")
        if not 0.0 <= self.distill <= 1.0 or self.distill_temperature <= 0:
            raise ValueError("distill is a weight in [0, 1] and distill_temperature positive")
        if self.mixup < 0 or self.cutmix < 0:
            raise ValueError("mixup and cutmix are Beta alphas: 0 (off) or positive")
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


def tta_views(xb: torch.Tensor, tta: str | bool = "none", crop: int | None = None) -> list[torch.Tensor]:
    """The views of a batch that test-time augmentation averages over.

    Parameters
    ----------
    xb : Tensor of shape (b, c, h, w)
    tta : {'none', 'flip', 'ten-crop'} or bool, default='none'
        ``True`` means ``'flip'``. ``'ten-crop'``: the four corner crops and the centre crop of
        size ``crop`` and their mirror images (Krizhevsky et al. 2012; Khaireddin & Chen 2021
        use it on FER2013). The network pools globally, so crops need no resizing.
    crop : int, optional
        Side of the ten crops in pixels; default ``h - h // 12`` (44 for 48x48 faces).

    Returns
    -------
    list of Tensor
        1, 2 or 10 views.

    Raises
    ------
    ValueError
        For an unknown mode.
    """
    mode = {True: "flip", False: "none"}.get(tta, tta)
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {tta!r}; expected one of {', '.join(TTA_MODES)}")
    if mode == "none":
        return [xb]
    if mode == "flip":
        return [xb, torch.flip(xb, dims=[3])]
    h, w = xb.shape[-2:]
    c = crop or h - h // 12
    crops = [xb[..., :c, :c], xb[..., :c, w - c :], xb[..., h - c :, :c], xb[..., h - c :, w - c :]]
    top, left = (h - c) // 2, (w - c) // 2
    crops.append(xb[..., top : top + c, left : left + c])
    return crops + [torch.flip(v, dims=[3]) for v in crops]


def mean_over_views(fn, xb: torch.Tensor, tta: str | bool = "none") -> torch.Tensor:
    """The mean of ``fn`` (a network or its embedding) over the TTA views of ``xb`` (:func:`tta_views`), float32."""
    views = tta_views(xb, tta)
    return sum(fn(v).float() for v in views) / len(views)


def predict_logits(
    net,
    X: torch.Tensor,
    device: torch.device,
    batch_size: int = 512,
    tta: str | bool = "none",
    *,
    precision: str = "auto",
    channels_last: bool = True,
) -> torch.Tensor:
    """Logits of standardised images ``(n, 1, h, w)``, in eval mode, gathered on the CPU.

    With ``tta`` (:func:`tta_views`) the logits of the views of each image are averaged.
    ``precision`` and ``channels_last`` as in :func:`batched_forward`.
    """
    if len(X) == 0:
        return torch.zeros((0, net.classifier.out_features))

    return batched_forward(
        lambda xb: mean_over_views(net, xb, tta), X, device, batch_size, net=net, precision=precision, channels_last=channels_last
    )


def mix_batch(
    xb: torch.Tensor, tb: torch.Tensor, cfg: TrainConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix of a batch and its target distributions (a no-op when both are off).

    Parameters
    ----------
    xb : Tensor of shape (b, 1, h, w)
    tb : Tensor of shape (b, n_classes), float
        Target distributions (one-hot, or vote distributions).
    cfg : TrainConfig
        ``mixup`` and ``cutmix`` are the alphas of the Beta mixing weight; with both on, each batch
        uses one of them (probability 1/2).
    generator : torch.Generator
        On the batch's device: chooses the partners, the mode and the box.

    Returns
    -------
    (Tensor, Tensor)
        The mixed batch and targets: ``lam * own + (1 - lam) * partner``, ``lam`` being the area
        kept for CutMix.

    References
    ----------
    .. [1] Zhang, H. et al. "mixup: Beyond empirical risk minimization." ICLR 2018.
    .. [2] Yun, S. et al. "CutMix: Regularization strategy to train strong classifiers with
           localizable features." ICCV 2019. doi:10.1109/ICCV.2019.00612
    """
    modes = [m for m in ("mixup", "cutmix") if getattr(cfg, m) > 0]
    if not modes:
        return xb, tb
    dev = xb.device
    pick = int(torch.randint(len(modes), (1,), device=dev, generator=generator)) if len(modes) > 1 else 0
    mode = modes[pick]
    alpha = getattr(cfg, mode)
    # Beta(a, a) from two Gammas, with the generator (torch.distributions takes none)
    g = torch._standard_gamma(torch.full((2,), float(alpha), device=dev), generator=generator)
    lam = float(g[0] / g.sum())
    perm = torch.randperm(len(xb), device=dev, generator=generator)
    if mode == "mixup":
        return lam * xb + (1 - lam) * xb[perm], lam * tb + (1 - lam) * tb[perm]
    h, w = xb.shape[-2:]
    bh, bw = int(round(h * math.sqrt(1 - lam))), int(round(w * math.sqrt(1 - lam)))
    cy = int(torch.randint(h, (1,), device=dev, generator=generator))
    cx = int(torch.randint(w, (1,), device=dev, generator=generator))
    y0, y1 = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
    xb = xb.clone()
    xb[..., y0:y1, x0:x1] = xb[perm][..., y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return xb, lam * tb + (1 - lam) * tb[perm]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` ``(b, k)`` against target distributions ``(b, k)``.

    With one-hot targets it equals ``torch.nn.CrossEntropyLoss(label_smoothing=...)``; with
    vote distributions it is the FERPlus paper's cross-entropy ("PLD") scheme (Barsoum et al.
    2016). Smoothing mixes each target with the uniform distribution: ``(1 - e) t + e / k``.
    """
    k = logits.shape[1]
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / k
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


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

    Returns
    -------
    dict
        The checkpoint: ``format``, ``config``, ``state_dict`` (float16 on the CPU), ``mean``,
        ``std``, ``n_classes``, ``history``, ``best_epoch``, ``val_accuracy``, ``device``,
        ``precision`` (the arithmetic used), ``train_seconds``. Save it with :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        If ``soft_train`` does not have one row per training image, or ``config.init_checkpoint``
        holds another network, or other classes while ``classes`` (or its own) are unknown.
    FileNotFoundError
        If ``config.init_checkpoint`` names a missing file.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from fer_features.persist import atomic_path

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
    loader = DataLoader(
        TensorDataset(xt, tt), batch_size=cfg.batch_size, shuffle=True, drop_last=len(xt) > cfg.batch_size, generator=loader_gen
    )
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15, anneal_strategy="cos"
    )
    aug_gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)

    state = {"epoch": 0, "history": [], "best_accuracy": -1.0, "best_epoch": -1, "best_state": None, "seconds": 0.0}
    # A resume file is used only for the same config and the same data.
    data_key = [len(xt), len(xv), round(mean, 6), round(std, 6), int(yt.sum()), int(yv.sum()), round(float(tt.sum()), 3)]
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, map_location="cpu", weights_only=False)
        if saved.get("config") == asdict(cfg) and saved.get("data_key") == data_key:
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
        for xb, tb in loader:
            t0 = time.perf_counter()
            xb, tb = xb.to(dev, non_blocking=True), tb.to(dev, non_blocking=True)
            xb = augment(xb, cfg, aug_gen)
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
    normalise = lambda net: {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in net.items()}  # noqa: E731
    if normalise(theirs) != normalise(ours):
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


def _float_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's float16 weights as float32 (integer buffers as they are)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}


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
            f"{path}: no such CNN checkpoint; train one with `fer train --clf cnn --out models/cnn.skops` "
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
    net.load_state_dict(_float_state(ckpt))
    return net.to(device).eval()

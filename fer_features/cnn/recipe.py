"""The CNN's training recipe: its configuration, input scaling, augmentation, mixing, loss and test-time views."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from fer_features.cnn.photometric import photometric
from fer_features.cnn.presets import PRESETS
from fer_features.config import CNN_EPOCHS, TTA_MODES
from fer_features.torch_utils import (
    PRECISIONS,
    batched_forward,
)


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
    photometric : float
        Probability per image of one photometric transform
        (:func:`~fer_features.cnn.photometric.photometric`): brightness, contrast or gamma
        jitter, Gaussian blur, Gaussian noise, low resolution or JPEG compression, at a random
        strength up to the robustness benchmark's strongest
        (:data:`~fer_features.cnn.photometric.PHOTOMETRIC_RANGES`; Hendrycks & Dietterich
        2019). 0 (the default) turns it off and leaves the augmentation's random stream as it was.
    pipeline_views : float
        Probability per image of training on its *pipeline view* in place of the FER2013 crop:
        the face as the photo pipeline detects and aligns it
        (:func:`~fer_features.data.photos.pipeline_views`), before the other augmentations.
        FER2013's framing varies around the eye positions the pipeline aligns every face to, so a
        network trained on FER2013's framing alone meets a new framing in every photo. Needs the
        views (``views_train`` of :func:`~fer_features.cnn.loop.train_cnn`). 0 (the default)
        turns it off and leaves the random streams as they were.
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
    photometric: float = 0.0
    pipeline_views: float = 0.0
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
        if not 0.0 <= self.photometric <= 1.0:
            raise ValueError(f"photometric is a probability in [0, 1], got {self.photometric!r}")
        if not 0.0 <= self.pipeline_views <= 1.0:
            raise ValueError(f"pipeline_views is a probability in [0, 1], got {self.pipeline_views!r}")
        if self.mixup < 0 or self.cutmix < 0:
            raise ValueError("mixup and cutmix are Beta alphas: 0 (off) or positive")
        if not self.net:
            self.net = dict(PRESETS[self.preset])


def to_tensor(X: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """``(n, h, w)`` uint8 → ``(n, 1, h, w)`` float32, standardised."""
    # a copy: X may be a read-only memory map (joblib workers), which torch will not wrap
    return (torch.from_numpy(np.array(X, dtype=np.uint8, copy=True)).float().div_(255.0).sub_(mean).div_(std)).unsqueeze(1)


def augment(
    x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator, *, mean: float = 0.0, std: float = 1.0
) -> torch.Tensor:
    """Random flip, rotation, zoom and shift (one affine warp per image), then a photometric
    transform (:func:`~fer_features.cnn.photometric.photometric`, when ``cfg.photometric``), then
    random erasing.

    Parameters
    ----------
    x : Tensor of shape (n, 1, h, w), float
    cfg : TrainConfig
    generator : torch.Generator
        On x's device; makes the augmentation reproducible.
    mean, std : float, default=0.0, 1.0
        The standardisation of ``x`` (grey level / 255 is ``x * std + mean``), which the
        photometric transforms need; :func:`to_tensor`'s.

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
    if cfg.photometric > 0:  # nothing drawn when off: runs without it keep their random stream
        x = photometric(x, cfg.photometric, generator, mean=mean, std=std)
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

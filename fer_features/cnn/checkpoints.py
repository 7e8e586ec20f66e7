"""CNN checkpoints: the saved network (``.pt``, tensors only), read back and rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fer_features.cnn.net import build_net

CHECKPOINT_FORMAT = "fer-features-cnn/1"


def _float_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's float16 weights as float32 (integer buffers as they are)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}


def same_net(a: dict, b: dict) -> bool:
    """Whether two architectures (``config["net"]``) are the same, lists and tuples alike
    (a checkpoint keeps the tuples of its config; one read back from JSON has lists)."""
    normalise = lambda net: {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in dict(net).items()}  # noqa: E731
    return normalise(a) == normalise(b)


def save_checkpoint(checkpoint: dict, path: str | os.PathLike) -> Path:
    """Write a checkpoint from :func:`train_cnn` atomically (float16 weights: a few MiB)."""
    from fer_features.persist.outputs import atomic_path

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

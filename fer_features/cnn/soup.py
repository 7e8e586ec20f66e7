"""Model soups: fine-tunes of one network averaged weight by weight, uniformly or greedily."""

from __future__ import annotations

from pathlib import Path

import torch

from fer_features.cnn.checkpoints import _float_state, load_checkpoint, net_from_checkpoint, same_net
from fer_features.cnn.ensemble import _check_labels
from fer_features.config import SOUP_PRECISIONS


def average_checkpoints(paths) -> dict:
    """A uniform model soup: the mean of the weights of networks fine-tuned from one start.

    Networks fine-tuned from the same pre-trained weights with different recipes stay in one
    basin of the loss, and the mean of their weights is often as accurate as the best of them
    and more robust to shifts, at the cost of one network (Wortsman et al. 2022; averaging a
    fine-tune with its start is WiSE-FT, Wortsman et al. 2022b). Batch-norm statistics are
    averaged with the weights.

    Parameters
    ----------
    paths : sequence of str or path-like
        Two or more checkpoints (:func:`save_checkpoint`) of one architecture (``config["net"]``),
        the same classes (in any order: classifier rows are matched by name to the first's) and
        the same input standardisation (``mean``, ``std``).

    Returns
    -------
    dict
        A checkpoint of the first member's config and classes, float16 weights, and ``"soup"``:
        each member's path, best epoch, validation accuracy and training config (its recipe).
        It has no int8 calibration:
        add one with :func:`~fer_features.cnn.int8.add_int8_calibration` (``fer quantize``).

    Raises
    ------
    ValueError
        For fewer than two checkpoints, or members that differ in architecture, classes or
        standardisation; the message names the member.
    FileNotFoundError
        If a checkpoint is missing.

    References
    ----------
    .. [1] Wortsman, M. et al. "Model soups: averaging weights of multiple fine-tuned models
           improves accuracy without increasing inference time." ICML 2022. arXiv:2203.05482
    .. [2] Wortsman, M. et al. "Robust fine-tuning of zero-shot models." CVPR 2022.
           arXiv:2109.01903
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"a soup needs at least two checkpoints, got {len(paths)}")
    members, states = _soup_members(paths)
    return _soup(paths, members, states, reference=members[0], method="uniform")


def greedy_soup(paths, X, y, *, batch_size: int = 512, precision: str = "fp32", calibration_faces=None) -> dict:
    """A greedy model soup: fine-tunes of one start added to the average only where they help.

    The ingredients are sorted by their accuracy on held-out faces ``(X, y)``, best first; the
    soup starts as the best one, and each next ingredient joins it if the mean of the weights,
    with it, is at least as accurate on ``(X, y)`` as without it (Wortsman et al. 2022, Recipe 1,
    "greedy soup") [1]_. Unlike the uniform soup (:func:`average_checkpoints`), a fine-tune that left
    the start's basin, or one that is simply worse, cannot drag the average down. Accuracy is
    measured on the CPU with the float16 weights the soup is saved with, in float32 or, for a
    soup that will run in int8, in int8: each trial soup calibrated on ``calibration_faces`` as
    ``fer quantize`` calibrates it.

    ``(X, y)`` must be a validation split (FER2013 PublicTest), never the split that is reported:
    the soup is fitted to it.

    Parameters
    ----------
    paths : sequence of str or path-like
        One or more checkpoints, as for :func:`average_checkpoints`.
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Held-out faces, cropped and aligned as in training.
    y : array-like of shape (n_samples,)
        Their labels, as the checkpoints' class names (``"happy"``, ...).
    batch_size : int, default=512
        Faces per forward pass.
    precision : {'fp32', 'int8'}, default='fp32'
        The arithmetic the soup is judged in.
    calibration_faces : ndarray of shape (n_faces, 48, 48), dtype uint8, optional
        Training faces for the int8 calibration of each trial soup (required for ``'int8'``;
        :func:`~fer_features.cnn.int8.calibrate_checkpoint` uses a seeded 1,024 of them).

    Returns
    -------
    dict
        A checkpoint as :func:`average_checkpoints` returns, with ``"soup"``'s ``"method"``
        ``"greedy"``, ``"members"`` the ingredients kept, and ``"ingredients"``: for each, in the
        order tried, its path, its own accuracy, the soup's accuracy with it and whether it was
        kept (keys ``"checkpoint"``, ``"accuracy"``, ``"soup_accuracy"``, ``"kept"``);
        ``"held_out"``: the number of faces; ``"precision"``: the arithmetic it was judged in. Its config and class order are the first path's,
        whichever ingredients are kept. With one ingredient the soup is that network.

    Raises
    ------
    ValueError
        For no checkpoints or no faces, an unknown ``precision`` or ``'int8'`` without
        ``calibration_faces``, ingredients that are not fine-tunes of one network (as
        in :func:`average_checkpoints`), ``X`` and ``y`` of different lengths, or labels that are
        not among the checkpoints' classes.
    FileNotFoundError
        If a checkpoint is missing.

    Notes
    -----
    Judge a soup that will run in int8 in int8: half a point of greedy gain on PublicTest is
    within what int8 rounding moves (BENCHMARKS.md, "Robustness", fourth round: a greedy soup
    chosen in float32, half a point above the uniform one there, fell below it in int8). In
    int8 each trial is calibrated, a few seconds more per ingredient.

    References
    ----------
    .. [1] Wortsman, M. et al. "Model soups: averaging weights of multiple fine-tuned models
           improves accuracy without increasing inference time." ICML 2022. arXiv:2203.05482
    """
    import numpy as np

    from fer_features.cnn.recipe import predict_logits, to_tensor

    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("a greedy soup needs at least one checkpoint, got none")
    if precision not in SOUP_PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected {' or '.join(map(repr, SOUP_PRECISIONS))}")
    if precision == "int8" and (calibration_faces is None or not len(calibration_faces)):
        raise ValueError("precision='int8' needs calibration_faces: Training faces to calibrate each trial soup")
    y = np.asarray(y).astype(str)
    if not len(y):
        raise ValueError("a greedy soup needs held-out faces to choose on, got none")
    if len(X) != len(y):
        raise ValueError(f"X holds {len(X)} faces but y {len(y)} labels")
    members, states = _soup_members(paths)
    names = _check_labels(y, members[0]["classes"], "labels")
    target = np.array([names.index(label) for label in y])
    cpu = torch.device("cpu")
    xt = to_tensor(X, float(members[0]["mean"]), float(members[0]["std"])) if precision == "fp32" else None

    def soup_of(chosen: list[int]) -> dict:  # in the first path's config and class order, whatever is kept
        picked = [paths[i] for i in chosen], [members[i] for i in chosen], [states[i] for i in chosen]
        return _soup(*picked, reference=members[0], method="greedy")

    def accuracy(chosen: list[int]) -> float:
        ckpt = soup_of(chosen)
        if precision == "int8":  # as CNNClassifier.from_checkpoint(..., precision="int8") runs it after `fer quantize`
            from fer_features.cnn import int8
            from fer_features.cnn.classifier import CNNClassifier

            ckpt["int8"] = int8.calibrate_checkpoint(ckpt, calibration_faces)
            clf = CNNClassifier.from_checkpoint(ckpt, precision="int8", device="cpu", batch_size=batch_size)
            return float(np.mean(clf.predict(X).astype(str) == y))
        logits = predict_logits(
            net_from_checkpoint(ckpt, cpu), xt, cpu, batch_size, precision="fp32", channels_last=False
        )
        return float(np.mean(logits.argmax(1).numpy() == target))

    own = [accuracy([i]) for i in range(len(paths))]
    order = sorted(range(len(paths)), key=lambda i: -own[i])  # stable: ties keep the given order
    chosen, best = [order[0]], own[order[0]]
    trace = [{"checkpoint": str(paths[order[0]]), "accuracy": own[order[0]], "soup_accuracy": best, "kept": True}]
    for i in order[1:]:
        score = accuracy(chosen + [i])
        kept = score >= best
        if kept:
            chosen, best = chosen + [i], score
        trace.append({"checkpoint": str(paths[i]), "accuracy": own[i], "soup_accuracy": score, "kept": kept})
    checkpoint = soup_of(chosen)
    checkpoint["soup"].update(ingredients=trace, held_out=int(len(y)), precision=precision)
    return checkpoint


def _soup_members(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """The checkpoints and their float32 states (classifier rows in the first's class order),
    checked to be fine-tunes of one network."""
    members = [load_checkpoint(p) for p in paths]
    first = members[0]
    names = [str(c) for c in first.get("classes") or []]
    if not names:
        raise ValueError(f"{paths[0]}: the checkpoint has no class names")
    states = []
    for path, ckpt in zip(paths, members):
        if not same_net(ckpt["config"]["net"], first["config"]["net"]) or ckpt["n_classes"] != first["n_classes"]:
            raise ValueError(
                f"{path}: its network {ckpt['config']['net']} is not {paths[0]}'s {first['config']['net']}"
            )
        own = [str(c) for c in ckpt.get("classes") or []]
        if sorted(own) != sorted(names):
            raise ValueError(f"{path}: its classes {own} differ from {paths[0]}'s {names}")
        if (float(ckpt["mean"]), float(ckpt["std"])) != (float(first["mean"]), float(first["std"])):
            raise ValueError(
                f"{path}: its input standardisation differs from {paths[0]}'s (not fine-tuned from one start)"
            )
        state = _float_state(ckpt)
        if own != names:  # the classifier's rows in the first member's order
            order = [own.index(c) for c in names]
            n = int(first["n_classes"])
            state = {k: (v[order] if v.is_floating_point() and v.ndim >= 1 and v.shape[0] == n and k.startswith("classifier.") else v)
                     for k, v in state.items()}  # fmt: skip
        states.append(state)
    return members, states


def _soup(paths: list[Path], members: list[dict], states: list[dict], *, reference: dict, method: str) -> dict:
    """The checkpoint of the mean of ``states`` (float16 weights) with ``reference``'s config and classes:
    ``states`` must hold the classifier rows in ``reference``'s class order (:func:`_soup_members`)."""
    soup = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            soup[key] = (sum(s[key] for s in states) / len(states)).half()
        else:
            soup[key] = value  # counters (batches seen): the first member's
    keep = ("format", "config", "mean", "std", "n_classes", "device", "precision", "soft_labels", "classes")
    checkpoint = {k: reference[k] for k in keep if k in reference}
    checkpoint["state_dict"] = soup
    checkpoint["soup"] = {
        "method": method,
        "members": [{"checkpoint": str(p), "best_epoch": c.get("best_epoch"), "val_accuracy": c.get("val_accuracy"),
                     "config": {k: v for k, v in c["config"].items() if k != "net"}} for p, c in zip(paths, members)],
    }  # fmt: skip
    return checkpoint

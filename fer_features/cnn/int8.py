"""Int8 inference of a :class:`~fer_features.cnn.net.FERNet` on the CPU: static post-training quantization.

PyTorch's eager-mode static quantization (``torch.ao.quantization``; Jacob et al. 2018): each
3x3 conv is fused with its batch norm and ReLU, the embedding's linear layer absorbs its batch
norm, weights are quantized per output channel (symmetric int8) and activations per tensor
(uint8) with scales calibrated once on Training faces. On x86 the kernels are FBGEMM/oneDNN's
VNNI int8 GEMMs, several times the bf16 throughput of the same network here
(BENCHMARKS.md, section "Int8 inference").

A calibration is a small dict of plain numbers (each quantized activation's scale and zero
point, by module name), stored in the checkpoint under ``"int8"`` and in a fitted estimator,
so the int8 network is rebuilt from the float weights without the calibration faces.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

#: Faces of the Training split used to calibrate the activation ranges (the first ones of a
#: seeded permutation; enough for the histogram observers to settle).
CALIBRATION_FACES = 1024

#: Inference batch sizes tried by :func:`fastest_batch_size`. On 2 Xeon cores with AMX the large
#: network alone ran ~4,000 faces/s in batches of 32–64 and 2,500–2,900 in batches of 128–512
#: (its first stage holds 147 KB of activations a face), while the compact ones were fastest at
#: 128 (``cnn-compact-ens``) and 512 (``cnn-compact-stem2-ens``) (BENCHMARKS.md): no one
#: size suits every network.
BATCH_SIZES = (32, 48, 64, 128, 256, 512)


def quantized_engine() -> str:
    """The quantized backend of this machine: ``'x86'`` (FBGEMM + oneDNN), else ``'qnnpack'`` (ARM)."""
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "qnnpack"):
        if name in engines:
            return name
    raise RuntimeError(f"this torch build has no quantized CPU engine (supported: {engines})")


class _QuantizableFERNet(nn.Module):
    """A FERNet's layers between a quantize and a dequantize stub, batch norms folded."""

    def __init__(self, net):
        super().__init__()
        import torch.ao.quantization as tq

        self.quant = tq.QuantStub()
        # own float32 copies on the CPU in NCHW layout (the net may be bf16-laid-out, channels_last or on a GPU)
        self.features = copy.deepcopy(net.features).float().cpu().to(memory_format=torch.contiguous_format).eval()
        self.pool = net.pool
        lin, bn = net.embedding[1], net.embedding[2]
        scale = bn.weight.detach().float().cpu() / torch.sqrt(bn.running_var.float().cpu() + bn.eps)
        self.embedding = nn.Linear(lin.in_features, lin.out_features, bias=True)
        with torch.no_grad():
            self.embedding.weight.copy_(lin.weight.detach().float().cpu() * scale[:, None])
            self.embedding.bias.copy_(bn.bias.detach().float().cpu() - bn.running_mean.float().cpu() * scale)
        self.relu = nn.ReLU()
        self.classifier = copy.deepcopy(net.classifier).float().cpu()
        self.dequant = tq.DeQuantStub()
        self.eval()
        mods = list(self.features.named_children())
        groups = [[n, mods[i + 1][0], mods[i + 2][0]] for i, (n, m) in enumerate(mods) if isinstance(m, nn.Conv2d)]
        tq.fuse_modules(self.features, groups, inplace=True)
        tq.fuse_modules(self, [["embedding", "relu"]], inplace=True)

    def _embedding(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.embedding(torch.flatten(self.pool(self.features(self.quant(x))), 1)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, h, w)`` float images → ``(n, embedding_dim)`` float32 embeddings."""
        return self.dequant(self._embedding(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, h, w)`` float images → ``(n, n_classes)`` float32 logits."""
        return self.dequant(self.classifier(self._embedding(x)))


def _prepared(net, engine: str):
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = engine
    q = _QuantizableFERNet(net)
    q.qconfig = tq.get_default_qconfig(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice (the API still works in 2.13)
        tq.prepare(q, inplace=True)
    return q


def _convert(q):
    import torch.ao.quantization as tq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices; uncalibrated observers (their scales are replaced)
        return tq.convert(q, inplace=False)


def calibrate_int8(net, X: torch.Tensor, *, batch_size: int = 256) -> dict:
    """Calibrate the int8 activation ranges of ``net`` on standardised faces.

    Parameters
    ----------
    net : FERNet
        The float network (eval mode; it is not changed).
    X : Tensor of shape (n, 1, 48, 48), float32
        Standardised faces (:func:`~fer_features.cnn.recipe.to_tensor`), e.g. Training faces.
    batch_size : int, default=256

    Returns
    -------
    dict
        ``{"engine": str, "n_faces": int, "scales": {module name: [scale, zero_point]}}``:
        plain numbers, to store in a checkpoint (``"int8"``) and pass to :func:`int8_network`.

    Raises
    ------
    ValueError
        If ``X`` is empty.
    """
    if len(X) == 0:
        raise ValueError("int8 calibration needs at least one face")
    engine = quantized_engine()
    q = _prepared(net, engine)
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            q(X[start : start + batch_size].float())
    qnet = _convert(q)
    return {"engine": engine, "n_faces": int(len(X)), "scales": _activation_qparams(qnet)}


def _quantized_layers(qnet) -> dict:
    """The converted network's modules that carry an activation scale and zero point, by name."""
    return {name: mod for name, mod in qnet.named_modules() if name and hasattr(mod, "scale") and hasattr(mod, "zero_point")}


def _activation_qparams(qnet) -> dict:
    return {name: [float(mod.scale), int(mod.zero_point)] for name, mod in _quantized_layers(qnet).items()}


def int8_network(net, calibration: dict) -> nn.Module:
    """The int8 network of ``net`` with the activation scales of ``calibration`` (:func:`calibrate_int8`).

    Parameters
    ----------
    net : FERNet
        The float network (any device and layout; not changed).
    calibration : dict
        As returned by :func:`calibrate_int8` (or read from a checkpoint).

    Returns
    -------
    torch.nn.Module
        Float ``(n, 1, h, w)`` standardised faces → float32 ``(n, n_classes)`` logits (and
        ``.embed``: → float32 ``(n, embedding_dim)``, as :meth:`FERNet.embed
        <fer_features.cnn.net.FERNet.embed>`), in eval mode, on the CPU.

    Raises
    ------
    ValueError
        If the calibration does not match the network's layers.
    """
    engine = quantized_engine()
    qnet = _convert(_prepared(net, engine))
    targets = _quantized_layers(qnet)
    scales = calibration.get("scales", {})
    if set(targets) != set(scales):
        raise ValueError(
            f"the int8 calibration names layers {sorted(scales)} but the network has {sorted(targets)}: "
            "calibrate it again for this network"
        )
    for name, mod in targets.items():
        scale, zero_point = scales[name]
        if isinstance(mod.scale, torch.Tensor):  # QuantStub's Quantize keeps them as buffers
            mod.scale = torch.tensor([float(scale)])
            mod.zero_point = torch.tensor([int(zero_point)], dtype=torch.long)
        else:
            mod.scale, mod.zero_point = float(scale), int(zero_point)
    return qnet.eval()


def fastest_batch_size(qnet, *, candidates=BATCH_SIZES, n_faces: int = 2048, repeats: int = 2, seed: int = 0) -> dict:
    """Measure the int8 network's throughput at each candidate batch size on this machine.

    Parameters
    ----------
    qnet : torch.nn.Module
        The int8 network (:func:`int8_network`).
    candidates : sequence of int, default=BATCH_SIZES
    n_faces : int, default=2048
        Random standardised 48x48 faces per timing: several batches of every size, since the
        cost of allocating each batch's activations shows only from the second one on (with
        1,024 faces the large network measured alike at 64 and 256; with 2,048, 3,978 against
        2,393 faces/s, as in a whole PrivateTest call).
    repeats : int, default=2
        Timings per candidate; the best counts (the others are disturbed by whatever else runs).
    seed : int, default=0

    Returns
    -------
    dict
        ``{"batch_size": int, "faces_per_s": {str(batch size): int}}``: the fastest size and
        every measurement (faces per second, rounded).

    Raises
    ------
    ValueError
        If ``candidates`` is empty or holds a size below 1.
    """
    import time

    sizes = [int(b) for b in candidates]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch sizes must be positive integers, got {list(candidates)!r}")
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n_faces, 1, 48, 48), dtype=np.float32))
    rates = {}
    with torch.inference_mode():
        for size in sizes:
            qnet(x[:size])  # warm: oneDNN builds its kernels for the shape on first use
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for start in range(0, n_faces, size):
                    qnet(x[start : start + size])
                best = min(best, time.perf_counter() - t)
            rates[str(size)] = round(n_faces / best)  # str keys: the calibration is stored as JSON-like data
    return {"batch_size": int(max(rates, key=rates.get)), "faces_per_s": rates}


def calibration_sample(n_images: int, n: int = CALIBRATION_FACES, seed: int = 0) -> np.ndarray:
    """Indices of the ``n`` calibration faces among ``n_images`` (a seeded permutation's first ones)."""
    return np.sort(np.random.default_rng(seed).permutation(n_images)[: min(n, n_images)])


def calibrate_checkpoint(ckpt: dict, X: np.ndarray, *, n: int = CALIBRATION_FACES, seed: int = 0, measure_batch: bool = False) -> dict:
    """The int8 calibration of a checkpoint's network on face crops (``ckpt["int8"]``'s value).

    Parameters
    ----------
    ckpt : dict
        A CNN checkpoint (:func:`~fer_features.cnn.checkpoints.load_checkpoint`).
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Training faces; ``n`` of them (:func:`calibration_sample`) are used.
    n : int, default=CALIBRATION_FACES
    seed : int, default=0
    measure_batch : bool, default=False
        Also time the int8 network at each of :data:`BATCH_SIZES` (:func:`fastest_batch_size`,
        a few seconds) and store the fastest as ``"batch_size"``, with the measurements as
        ``"faces_per_s"``: :meth:`CNNClassifier.from_checkpoint
        <fer_features.cnn.classifier.CNNClassifier.from_checkpoint>` then infers in batches of
        that size. The measurement is of the machine that calibrates.

    Returns
    -------
    dict
        As :func:`calibrate_int8`, with ``"batch_size"`` and ``"faces_per_s"`` if measured.
    """
    from fer_features.cnn.checkpoints import net_from_checkpoint
    from fer_features.cnn.recipe import to_tensor

    net = net_from_checkpoint(ckpt, torch.device("cpu"))
    idx = calibration_sample(len(X), n, seed)
    calibration = calibrate_int8(net, to_tensor(np.asarray(X)[idx], float(ckpt["mean"]), float(ckpt["std"])))
    if measure_batch:
        calibration.update(fastest_batch_size(int8_network(net, calibration)))
    return calibration


def add_int8_calibration(path, X: np.ndarray, *, out=None) -> dict:
    """Calibrate a saved checkpoint for int8 inference and write it back (atomically) with ``"int8"``.

    The fastest inference batch size on this machine is measured and stored with the
    calibration (:func:`fastest_batch_size`).

    Parameters
    ----------
    path : str or path-like
        The checkpoint (``.pt``).
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Training faces (never the faces a model is scored on).
    out : str or path-like, optional
        Where to write; default ``path`` itself.

    Returns
    -------
    dict
        The calibration written.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing or unreadable checkpoint (:func:`~fer_features.cnn.checkpoints.load_checkpoint`).
    """
    from fer_features.cnn.checkpoints import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(path)
    ckpt["int8"] = calibrate_checkpoint(ckpt, X, measure_batch=True)
    save_checkpoint(ckpt, out if out is not None else path)
    return ckpt["int8"]

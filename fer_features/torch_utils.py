"""Torch helpers shared by the learned features (``features/``) and the CNN (``cnn/``).

The lowest torch layer of the package: it imports nothing else from fer_features but
:mod:`~fer_features.config` and :mod:`~fer_features.threads`, so the CNN embedding
(``features/cnn.py``) and the CNN build on it. Importing this module
imports torch only inside the functions that need it (:func:`require_torch` works without).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from collections.abc import Callable

from fer_features.config import PRECISIONS
from fer_features.threads import SMALL_CALL, threads_for


def require_torch(what: str) -> None:
    """Raise ImportError with the install command if PyTorch is missing.

    Parameters
    ----------
    what : str
        What needs torch, for the message (e.g. ``"the cnn feature"``).
    """
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"{what} needs PyTorch, which is not installed: `pip install torch==2.13.0` "
            "(the CPU build pinned in requirements.lock; elsewhere `pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu`), a dependency of fer-features"
        )


def resolve_device(device: str = "auto"):
    """``'auto'`` → CUDA if available, else Apple MPS, else CPU; any other name as given.

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda', 'mps'} or a torch device string, default='auto'

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If a named device is not available on this machine.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use --device auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but Apple MPS is not available; use --device auto or cpu")
    return dev


def native_bf16() -> bool:
    """True if this CPU has native bf16 arithmetic (x86 ``avx512_bf16`` or ``amx_bf16``).

    Read from ``/proc/cpuinfo`` (Linux); False where that file is absent, so other systems use
    float32 unless bf16 is asked for. Without these instructions oneDNN emulates bf16, which is
    slower than float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def use_bf16(device, precision: str = "auto") -> bool:
    """Whether ``precision`` means bf16 autocast on ``device``.

    ``'bf16'`` forces it (on CPU, CUDA or MPS), ``'fp32'`` never, ``'auto'`` on CUDA and on CPUs
    with :func:`native_bf16`.

    Parameters
    ----------
    device : torch.device
    precision : {'auto', 'bf16', 'fp32'}, default='auto'

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        For a value not in :data:`~fer_features.config.PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    return device.type == "cuda" or (device.type == "cpu" and native_bf16())


def autocast(device, precision: str = "auto"):
    """The autocast context of ``precision`` on ``device`` (:func:`use_bf16`): bf16 or off."""
    import torch

    if use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def to_channels_last(net, enabled: bool = True):
    """``net`` with its 4-d weights in NHWC layout (in place) when ``enabled``."""
    import torch

    return net.to(memory_format=torch.channels_last) if enabled else net


def set_cpu_threads(n_images: int | None = None) -> None:
    """Set torch's intra-op threads for a call (:func:`fer_features.threads.threads_for`).

    Parameters
    ----------
    n_images : int, optional
        Images in the call: one thread below :data:`fer_features.threads.SMALL_CALL`, else
        every core; None (training) for every core.

    Left alone when ``OMP_NUM_THREADS`` is set: the user's choice wins. Torch keeps the count
    per calling thread, so threads that share a model do not change each other's.
    """
    import torch

    n = threads_for(SMALL_CALL if n_images is None else n_images)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def batched_forward(
    forward: Callable, X, device, batch_size: int = 512, *, net=None, precision: str = "auto", channels_last: bool = True
):
    """Apply ``forward`` to ``X`` batch by batch, gathered on the CPU.

    Runs under ``torch.inference_mode()``. On the CPU with several workers, the batches are
    made equal and their number a multiple of the workers (never larger than ``batch_size``), so
    that no thread waits for another's last batch. The batches are slices of ``X`` (views, no copy):
    a ``DataLoader`` over a ``TensorDataset`` indexes and re-stacks every row, which cost ~8 ms
    of a one-face call here, as much as the network itself.

    Parameters
    ----------
    forward : callable
        Tensor ``(b, ...)`` on ``device`` → tensor ``(b, d)``.
    X : Tensor of shape (n, ...)
        On the CPU.
    device : torch.device
    batch_size : int, default=512
    net : torch.nn.Module, optional
        Put in eval mode for the pass (and back to its mode after).
    precision : {'auto', 'bf16', 'fp32'}, default='auto'
        See :func:`use_bf16`; the output is float32 either way.
    channels_last : bool, default=True
        Feed 4-d batches in NHWC layout (the net should be converted too: :func:`to_channels_last`).

    Returns
    -------
    Tensor of shape (n, d), float32, on the CPU
    """
    import torch

    def one(start: int):
        with torch.inference_mode():  # thread-local, as autocast: entered in the thread that runs the batch
            xb = X[start : start + batch_size].to(device, non_blocking=True)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                return forward(xb).float().cpu()

    workers = threads_for(len(X)) if device.type == "cpu" else None
    if workers is not None and workers > 1 and len(X) > batch_size:
        # as many batches as before, rounded up to a multiple of the workers and made equal: 3,589
        # faces in batches of 512 were 7 full ones and 5 faces, one thread's fourth batch the other's idle time
        n_batches = -(-len(X) // batch_size)
        n_batches = -(-n_batches // workers) * workers
        batch_size = -(-len(X) // n_batches)
    starts = range(0, len(X), batch_size)
    was_training = net.training if net is not None else False
    if net is not None:
        net.eval()
    try:
        nested = threading.current_thread().name.startswith(_POOL_PREFIX)  # a batch's forward that calls this
        if workers is not None and workers > 1 and len(starts) > 1 and not nested:
            out = list(_batch_pool(workers).map(one, starts))  # side by side, one torch thread each
        else:
            if device.type == "cpu":
                set_cpu_threads(len(X))
            out = [one(start) for start in starts]
    finally:
        if net is not None:
            net.train(was_training)
    return torch.cat(out)


_POOLS: dict[tuple[int, int], object] = {}
_POOL_PREFIX = "fer-batches"


def _batch_pool(workers: int):
    """A process-wide pool of ``workers`` threads that run one torch thread each (created once).

    A large call's batches go to it (:func:`batched_forward`): each thread takes the next batch
    when it is done, so a core that another process holds slows only the batches it runs, and
    no parallel loop waits at a barrier for it (:mod:`fer_features.threads`).
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    key = (os.getpid(), workers)  # a forked child (a DataLoader worker, a server worker) makes its own
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS.setdefault(key, ThreadPoolExecutor(workers, thread_name_prefix=_POOL_PREFIX,
                                                         initializer=torch.set_num_threads, initargs=(1,)))  # fmt: skip
    return pool


def device_or_fallback(device: str, what: str):
    """:func:`resolve_device`, or the best device there is, with a warning, when ``device`` is missing.

    For models loaded on another machine than the one that made them: a model trained with
    ``device='cuda'`` loads on a laptop, and says so.

    Parameters
    ----------
    device : str
    what : str
        The model, for the warning.

    Returns
    -------
    torch.device
    """
    try:
        return resolve_device(device)
    except ValueError:
        fallback = resolve_device("auto")
        warnings.warn(
            f"{what} was made for device {device!r}, which this machine lacks; it runs on {fallback.type} "
            f"instead (set its device parameter to 'auto' or '{fallback.type}' to silence this)",
            RuntimeWarning,
            stacklevel=3,
        )
        return fallback


def _compact(array):
    """A float32 array as float16 when every value is a float16 (no value changes), else as it is.

    Checkpoints are saved in half precision, so the weights of a network loaded from one take
    half the space in a model file; weights that were trained on (or rounded) otherwise stay
    float32, exactly.
    """
    import numpy as np

    if array.dtype == np.float32:
        half = array.astype(np.float16)
        if np.array_equal(half.astype(np.float32), array):
            return half
    return array


class TorchModuleMixin:
    """Persistence of an estimator holding a torch module in ``module_`` (after skorch).

    The state holds the weights as plain numpy arrays on the CPU (``_module_state``, one array
    per ``state_dict`` entry; bf16 ones as float32, and float32 ones whose every value is a
    float16 as float16, which loses nothing), never torch objects, so the estimator saves
    with :mod:`skops.io` (whose loader builds no torch types) as well as with pickle. Loading
    rebuilds the module (``_make_module()``) on the device named by the estimator's ``device``
    parameter as it resolves on the loading machine (``'auto'``: CUDA, else MPS, else CPU). A
    model made for a device the loading machine lacks (``device='cuda'`` on a laptop) falls back
    to the best one there is, with a :class:`RuntimeWarning`.
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:
            import torch

            module = state.pop("module_")
            weights = {}
            for k, v in module.state_dict().items():
                v = v.detach().cpu()
                weights[k] = _compact((v.float() if v.dtype == torch.bfloat16 else v).numpy().copy())
            state["_module_state"] = weights
            state.pop("device_", None)
        return state

    def __setstate__(self, state):
        module_state = state.pop("_module_state", None)
        self.__dict__.update(state)
        if module_state is not None:
            import numpy as np
            import torch

            self.device_ = device_or_fallback(self.device, type(self).__name__)
            net = self._make_module()
            # numpy arrays (this format), or tensors (pickles written before it)
            net.load_state_dict(
                {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v)) for k, v in module_state.items()}
            )
            self.module_ = self._to_layout(net.to(self.device_).eval())

    def _make_module(self):
        """An untrained module of the fitted architecture (for unpickling)."""
        raise NotImplementedError

    def _to_layout(self, module):
        """The module in the memory layout its estimator computes in (as it is, by default)."""
        return module

    def to_device(self, device: str = "auto"):
        """Move the fitted module to ``device`` (and make it the ``device`` parameter); returns self."""
        self.device = device
        if hasattr(self, "module_"):
            self.device_ = resolve_device(device)
            self.module_ = self.module_.to(self.device_)
        return self


def move_model(model, device: str = "auto"):
    """Put every torch step of a fitted pipeline on ``device`` (others are left alone).

    Parameters
    ----------
    model : estimator
        A pipeline, feature union or estimator; steps without a torch module are skipped, and
        a model with none needs no torch.
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'

    Returns
    -------
    model
    """
    stack = [model]
    while stack:
        est = stack.pop()
        if isinstance(est, TorchModuleMixin):
            est.to_device(device)
        for attr in ("steps", "transformer_list"):
            stack.extend(step for _, step in getattr(est, attr, ()) if hasattr(step, "get_params"))
        for attr in ("estimator_", "estimator"):
            inner = getattr(est, attr, None)
            if hasattr(inner, "get_params"):
                stack.append(inner)
    return model

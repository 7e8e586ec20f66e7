"""Dynamic batching: concurrent requests classified together in one model call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)  # identity: items may be arrays, which do not compare to a bool
class _Job:
    item: Any
    key: Hashable
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    batch_size: int = 0


class DynamicBatcher:
    """Run concurrent calls of a batch function together: one call for all that are waiting.

    Each caller of :meth:`submit` (one thread per request, e.g. Starlette's thread pool) queues
    its item and waits for the inference lock. The thread that gets the lock takes every queued
    item with its key (up to ``max_batch``), calls ``fn`` once on the list and hands each caller
    its result; a caller whose item was taken by another thread's batch returns as soon as that
    batch ends. Nobody waits for a batch to fill: a lone request is run at once, alone, and
    requests that arrive while a batch runs form the next one. This is the "dynamic batching" of
    model servers (TorchServe, NVIDIA Triton) without their timer.

    Parameters
    ----------
    fn : callable
        ``fn(items: list) -> list`` of one result per item, in order. Called by one thread at a
        time (it may hold objects that are not thread-safe).
    max_batch : int, default=8
        Most items in one call.

    Notes
    -----
    When ``fn`` raises on a batch of several items, each item is run again alone, so that one
    bad item fails only its own request.

    Examples
    --------
    >>> batcher = DynamicBatcher(lambda xs: [2 * x for x in xs])
    >>> batcher.submit(21).result
    42
    """

    def __init__(self, fn: Callable[[list], Sequence], *, max_batch: int = 8):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def submit(self, item, key: Hashable = None) -> _Job:
        """Queue ``item`` and return once it has been run (by this thread or another).

        Parameters
        ----------
        item : object
            One input of ``fn``.
        key : hashable, optional
            Only items with equal keys share a batch (e.g. the request's detection options).

        Returns
        -------
        job
            With ``result`` (the item's output of ``fn``), ``seconds`` (wall time of the call of
            ``fn`` that ran it), ``batch_size`` (items in that call).

        Raises
        ------
        Exception
            Whatever ``fn`` raised for this item alone.
        """
        job = _Job(item, key)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done:
            with self._run_lock:
                if job.done:  # run in another thread's batch while this one waited
                    break
                with self._queue_lock:  # this job first, then the oldest ones with its key
                    others = [j for j in self._queue if j.key == key and j is not job]
                    batch = [job, *others[: self.max_batch - 1]]
                    for j in batch:
                        self._queue.remove(j)
                self._run(batch)
        if job.error is not None:
            raise job.error
        return job

    def _run(self, batch: list[_Job]) -> None:
        t = time.perf_counter()
        try:
            results = list(self.fn([j.item for j in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # noqa: BLE001 - handed to the caller whose item failed
            if len(batch) > 1:
                for j in batch:
                    self._run([j])
                return
            batch[0].error = exc
            results = [None]
        seconds = time.perf_counter() - t
        for j, r in zip(batch, results):
            j.result, j.seconds, j.batch_size, j.done = r, seconds, len(batch), True

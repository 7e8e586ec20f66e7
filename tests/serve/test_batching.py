"""``DynamicBatcher``: concurrent submissions run as one batch, keys kept apart, errors isolated."""

from __future__ import annotations

import threading
import time

import pytest

from fer_features.serve.batching import DynamicBatcher


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.001)


class Gate:
    """A batch function that records its calls; its first call blocks until ``release()``."""

    def __init__(self):
        self.calls: list[list] = []
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, items: list) -> list:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.opened.wait(10)
        if any(x < 0 for x in items):
            raise ValueError(f"negative item in {items}")
        return [10 * x for x in items]

    def release(self) -> None:
        self.opened.set()


def submit_in_threads(batcher, items, keys=None):
    results, errors, threads = {}, {}, []

    def one(i, item, key):
        try:
            job = batcher.submit(item, key=key)
            results[i] = (job.result, job.batch_size)
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            errors[i] = exc

    for i, item in enumerate(items):
        t = threading.Thread(target=one, args=(i, item, None if keys is None else keys[i]))
        t.start()
        threads.append(t)
    return threads, results, errors


def start_blocked(batcher, gate):
    """A first submission that holds the batcher inside ``fn`` until the gate opens."""
    first = submit_in_threads(batcher, [1])
    assert gate.entered.wait(10)
    return first


def test_alone_a_request_runs_at_once_as_a_batch_of_one():
    batcher = DynamicBatcher(lambda xs: [x + 1 for x in xs])
    job = batcher.submit(41)
    assert (job.result, job.batch_size) == (42, 1)
    assert job.seconds >= 0


def test_requests_arriving_during_a_call_form_the_next_batch():
    gate = Gate()
    batcher = DynamicBatcher(gate, max_batch=8)
    first_threads, first, _ = start_blocked(batcher, gate)
    threads, results, errors = submit_in_threads(batcher, [2, 3, 4, 5])
    wait_until(lambda: len(batcher._queue) == 4)
    gate.release()
    for t in first_threads + threads:
        t.join(10)
    assert not errors
    assert first[0] == (10, 1)
    assert sorted(results.values()) == [(20, 4), (30, 4), (40, 4), (50, 4)]
    assert len(gate.calls) == 2 and sorted(gate.calls[1]) == [2, 3, 4, 5]


def test_max_batch_and_keys_split_batches():
    gate = Gate()
    batcher = DynamicBatcher(gate, max_batch=2)
    first_threads, _, _ = start_blocked(batcher, gate)
    threads, results, errors = submit_in_threads(batcher, [2, 3, 4, 5, 6], keys=["a", "a", "a", "b", "b"])
    wait_until(lambda: len(batcher._queue) == 5)
    gate.release()
    for t in first_threads + threads:
        t.join(10)
    assert not errors
    assert {i: r for i, (r, _) in results.items()} == {0: 20, 1: 30, 2: 40, 3: 50, 4: 60}
    later = gate.calls[1:]
    assert all(len(call) <= 2 for call in later)
    assert sorted(x for call in later for x in call) == [2, 3, 4, 5, 6]
    for call in later:  # never 'a' and 'b' items together
        assert set(call) <= {2, 3, 4} or set(call) <= {5, 6}, call


def test_a_failing_item_fails_only_its_own_request():
    gate = Gate()
    batcher = DynamicBatcher(gate)
    first_threads, _, _ = start_blocked(batcher, gate)
    threads, results, errors = submit_in_threads(batcher, [2, -3, 4])
    wait_until(lambda: len(batcher._queue) == 3)
    gate.release()
    for t in first_threads + threads:
        t.join(10)
    assert set(errors) == {1} and isinstance(errors[1], ValueError)
    assert results == {0: (20, 1), 2: (40, 1)}  # run again one by one after the batch failed


def test_wrong_number_of_results_is_an_error():
    batcher = DynamicBatcher(lambda xs: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        batcher.submit(1)


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
        DynamicBatcher(lambda xs: xs, max_batch=0)


def test_array_items_one_at_a_time_each_get_their_own_result():
    """Images as items (arrays do not compare to a bool) and max_batch=1: every caller gets the
    result of its own item, whichever thread ran it."""
    import numpy as np

    gate = Gate()
    calls = []

    def fn(items):
        calls.append(len(items))
        if len(calls) == 1:
            gate.entered.set()
            assert gate.opened.wait(10)
        return [int(x.sum()) for x in items]

    batcher = DynamicBatcher(fn, max_batch=1)
    first = submit_in_threads(batcher, [np.full((4, 4), 1)])
    assert gate.entered.wait(10)
    threads, results, errors = submit_in_threads(batcher, [np.full((4, 4), k) for k in (2, 3, 4)])
    wait_until(lambda: len(batcher._queue) == 3)
    gate.release()
    for t in first[0] + threads:
        t.join(10)
    assert not errors
    assert results == {0: (32, 1), 1: (48, 1), 2: (64, 1)}
    assert calls == [1, 1, 1, 1]

"""The thread policy: idle OpenMP threads sleep, small calls run on one thread, the user's settings win."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fer_features import threads


def wait_policy_after_import(env: dict) -> str:
    code = "import fer_features, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_package_makes_idle_threads_sleep_unless_told_otherwise():
    assert wait_policy_after_import({}) == "PASSIVE"
    assert wait_policy_after_import({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_small_calls_run_on_one_thread_and_large_ones_on_every_core(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.threads_for(1) == 1
    assert threads.threads_for(threads.SMALL_CALL - 1) == 1
    assert threads.threads_for(threads.SMALL_CALL) == threads.cpu_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.threads_for(1) is None and threads.threads_for(10_000) is None  # the user's choice


def test_torch_threads_follow_the_call_size(monkeypatch):
    import torch

    from fer_features.torch_utils import set_cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        set_cpu_threads(1)
        assert torch.get_num_threads() == 1
        set_cpu_threads(10_000)
        assert torch.get_num_threads() == threads.cpu_cores()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("running", "idle"), [(1, 2), (2, 1), (7, 1), (None, 1)])
def test_idle_cores_leaves_out_the_cores_other_threads_want(monkeypatch, running, idle):
    monkeypatch.setattr(threads, "runnable_threads", lambda: running)
    assert threads.idle_cores(2) == idle


def test_runnable_threads_counts_the_caller():
    running = threads.runnable_threads()
    assert running is None or running >= 1  # this thread is running while it reads the count


@pytest.mark.parametrize(("omp", "idle", "expected"), [(None, 2, 2), (None, 1, 1), (None, 16, 2), ("1", 2, 1), ("4", 1, 2)])
def test_the_face_detector_takes_a_second_thread_only_on_an_idle_core(monkeypatch, omp, idle, expected):
    pytest.importorskip("yuface")
    from fer_features.faces.detectors import YuFaceDetector

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    if omp is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    monkeypatch.setattr(threads, "idle_cores", lambda cores=None: idle)
    assert YuFaceDetector()._threads() == expected


def test_a_large_call_is_split_into_equal_batches_for_the_workers(monkeypatch):
    torch = pytest.importorskip("torch")
    from fer_features import torch_utils

    seen = []
    forward = lambda xb: (seen.append(len(xb)), xb.sum(dim=1, keepdim=True))[1]  # noqa: E731
    X = torch.arange(3589 * 2, dtype=torch.float32).reshape(3589, 2)
    monkeypatch.setattr(torch_utils, "threads_for", lambda n: 2)
    out = torch_utils.batched_forward(forward, X, torch.device("cpu"), 512)
    torch.testing.assert_close(out, X.sum(dim=1, keepdim=True))  # every row once, in order
    # 7 full batches of 512 and one of 5 faces left one thread idle for a batch: now 8 of about 449
    assert len(seen) == 8 and max(seen) - min(seen) < len(seen) and max(seen) <= 512
    seen.clear()
    monkeypatch.setattr(torch_utils, "threads_for", lambda n: 1)  # one thread: the batches as asked
    torch_utils.batched_forward(forward, X, torch.device("cpu"), 512)
    assert seen == [512] * 7 + [5]

"""The thread policy: idle OpenMP threads sleep, small calls run on one thread, the user's settings win."""

from __future__ import annotations

import os
import subprocess
import sys

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

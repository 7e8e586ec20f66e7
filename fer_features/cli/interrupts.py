"""Ctrl-C without worker tracebacks: joblib's worker processes start with SIGINT blocked.

A terminal sends Ctrl-C (SIGINT) to every process of the foreground job: the ``fer`` process
and its joblib (loky) workers alike. A worker that is still starting, importing numpy or
scikit-learn, prints a ``KeyboardInterrupt`` traceback of its own, which buries the command's
one-line message. With SIGINT blocked at their birth (a signal mask is inherited across fork
and exec, and Python does not unblock it) the workers never see it: the main process gets the
KeyboardInterrupt, stops the batch and terminates them, as joblib always does.
"""

from __future__ import annotations

import functools
import signal

_installed = False


def shield_workers_from_ctrl_c() -> bool:
    """Make joblib's process workers start with SIGINT blocked (idempotent; for CLI processes).

    Wraps loky's process launcher so that the thread starting a worker blocks SIGINT for the
    moment of the fork; the worker keeps the blocked mask, the parent restores its own at once.

    Returns
    -------
    bool
        Whether the launcher is wrapped: False where the platform has no ``pthread_sigmask``
        or joblib's vendored loky has another layout (then nothing changes).
    """
    global _installed
    if _installed:
        return True
    if not hasattr(signal, "pthread_sigmask"):
        return False
    try:
        from joblib.externals.loky.backend import fork_exec as module
    except ImportError:
        return False
    launch = getattr(module, "fork_exec", None)
    if launch is None:
        return False

    @functools.wraps(launch)
    def fork_exec_without_sigint(*args, **kwargs):
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return launch(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    module.fork_exec = fork_exec_without_sigint
    _installed = True
    return True

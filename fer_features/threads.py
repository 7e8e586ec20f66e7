"""How fer-features shares the CPU's cores: idle OpenMP threads sleep, and small calls use one thread.

Torch (its CNNs), yuface (its face detector) and scikit-learn (gradient boosting) each bring an
OpenMP runtime (GNU libgomp). By default a libgomp thread that has finished its share of a
parallel loop *spins* for a while before it sleeps, waiting for the next loop. On a machine
where another process holds a core, the spinning threads and that process take turns on it,
and every parallel loop waits for its slowest thread: video, photos and gradient boosting
became several times slower on a busy machine (measurements in BENCHMARKS.md, "Busy machine").

The policy, applied when :mod:`fer_features` is imported:

* ``OMP_WAIT_POLICY=PASSIVE`` (:func:`sleep_when_idle`): idle threads sleep at once. libgomp
  reads it when it is loaded, so it must be set before torch, yuface or scikit-learn's OpenMP
  code is imported: ``import fer_features`` first, or set it in the environment yourself. A
  value already in the environment is left alone.
* Calls on few images run on one thread (:func:`threads_for`): waking a second thread costs
  more than it saves on a 48x48 crop, and one thread cannot be held up by another process.
* Large calls run their batches side by side, one torch thread per core
  (:func:`fer_features.torch_utils.batched_forward`): each thread takes the next batch when it
  is done, so a core that another process holds slows only the batches it runs. With torch's
  own intra-op threads, every layer of every batch waited at a barrier for the slower core, and
  a sleeping thread had to be woken for each layer (BENCHMARKS.md, "Busy machine").
* The face detector takes a second thread only while a second core is idle
  (:func:`detector_threads`, :func:`idle_cores`): on two threads yuface finds the faces of a photo in about half the
  time, but a thread that has to share its core with another process makes the call wait for it.
* ``OMP_NUM_THREADS``, when set, wins over all of this: the user's choice.
"""

from __future__ import annotations

import os

#: Images below which a model call runs on one thread (a photo's faces, a video's batch of 8 frames).
SMALL_CALL = 64


def sleep_when_idle() -> None:
    """Make idle OpenMP threads sleep instead of spinning, unless the environment says otherwise.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` in ``os.environ`` if it is not set. It takes effect for the
    OpenMP runtimes loaded after this call (libgomp reads it once, when it is loaded).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_for(n_images: int) -> int | None:
    """Torch intra-op threads for a call on ``n_images`` images.

    Parameters
    ----------
    n_images : int
        Images (crops or photos) in the call.

    Returns
    -------
    int or None
        1 below :data:`SMALL_CALL` images, else every core (:func:`cpu_cores`); None when
        ``OMP_NUM_THREADS`` is set (leave torch's setting alone).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return 1 if n_images < SMALL_CALL else cpu_cores()


def runnable_threads() -> int | None:
    """Threads of the whole machine that are running or ready to run at this instant, the caller's included.

    The fourth field of Linux's ``/proc/loadavg`` (``running/total``): a count now, not an
    average over minutes, so a busy loop started a second ago counts at once. None where it
    cannot be read (not Linux).
    """
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def idle_cores(cores: int | None = None) -> int:
    """Cores that no other thread wants right now, the calling thread's own counted as idle.

    Parameters
    ----------
    cores : int, optional
        The cores to share out; default :func:`cpu_cores`.

    Returns
    -------
    int
        ``cores`` minus the other runnable threads (:func:`runnable_threads`), at least 1. Where
        the count cannot be read, 1: the choice that never waits on a core another process holds.
    """
    cores = cpu_cores() if cores is None else cores
    running = runnable_threads()
    if running is None:
        return 1
    return max(1, min(cores, cores - (running - 1)))


def detector_threads(most: int = 2) -> int:
    """OpenMP threads for one face detection: :func:`idle_cores`, at most ``most``.

    ``OMP_NUM_THREADS``, when it is a number, wins (still at most ``most``).

    Parameters
    ----------
    most : int, default=2
        The most threads a detection can use well (the detector's working copy of a photo has
        few rows to share).

    Returns
    -------
    int
        At least 1.
    """
    user = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if user.isdigit():  # the user's choice wins
        return max(1, min(most, int(user)))
    return min(most, idle_cores())

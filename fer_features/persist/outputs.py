"""Outputs written safely: checked writable before any work, written to temporary names, moved into place together."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fer_features.persist.bundled import bundled_models_dir


class OutputError(ValueError):
    """An output path that cannot be written (checked before any work starts)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves an earlier ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    _usual_mode(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class StagedOutputs:
    """Temporary files beside their targets, moved into place together by :func:`staged_outputs`."""

    def __init__(self) -> None:
        self._temps: dict[Path, Path] = {}

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary path beside ``target`` (hidden, same suffix), moved onto ``target`` at the end.

        The target's folder is created. Asking twice for one target gives the same path.
        """
        target = Path(target)
        if target not in self._temps:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
            os.close(fd)
            _usual_mode(tmp)
            self._temps[target] = Path(tmp)
        return self._temps[target]

    def commit(self) -> None:
        """Move every temporary file onto its target; Ctrl-C is held back until all are moved."""
        import signal
        import threading

        interrupted = []
        main = threading.current_thread() is threading.main_thread()
        if main:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        try:
            for target, tmp in list(self._temps.items()):
                os.replace(tmp, target)
                del self._temps[target]
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt

    def discard(self) -> None:
        """Remove the temporary files not moved into place."""
        for tmp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._temps.clear()


@contextlib.contextmanager
def staged_outputs() -> Iterator[StagedOutputs]:
    """Write the files of one run to temporary names and move them into place together at the end.

    Inside the block, write each output to ``stage.path(target)``. When the block succeeds every
    file is moved onto its target (``os.replace``, with Ctrl-C held back until the last one);
    when it fails or is interrupted, the temporary files are removed and the targets keep
    their earlier contents: a run's model, card and plots change together or not at all.

    Examples
    --------
    >>> with staged_outputs() as stage:  # doctest: +SKIP
    ...     save_model(model, stage.path("m.skops"), format="skops")
    ...     plot_confusion_matrix(cm, stage.path("m.confusion.png"))
    """
    stage = StagedOutputs()
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()


def _usual_mode(path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode


def check_writable(path: str | os.PathLike, *, folder: bool = False, option: str = "--out") -> Path:
    """Check, before any work starts, that an output file (or folder) can be written.

    Nothing is created: the nearest existing folder above ``path`` gets a probe file, written
    and removed at once (a test that also holds for root and read-only file systems).

    Parameters
    ----------
    path : str or path-like
    folder : bool, default=False
        ``path`` is a folder to write files in (``--results-dir``), not a file.
    option : str, default='--out'
        The option's name, for the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        One line naming the option, the path and what stands in the way: a file where a folder
        must be, a folder where a file must be, a folder that cannot be written, or the
        installed package's bundled models (a run never writes into the package).
    """
    path = Path(path)
    bundled, target = bundled_models_dir().resolve(), path.resolve()
    if target == bundled or bundled in target.parents:
        raise OutputError(f"{option} {path}: inside the package's bundled models ({bundled}); write elsewhere, e.g. models/")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    where = path if folder else path.parent
    existing = where if str(where) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".fer-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path

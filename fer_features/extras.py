"""Optional dependencies: import one, or fail with the ``pip install`` line of the extra that holds it.

The base install runs what ships (``fer predict``, :class:`~fer_features.Recognizer` and the
bundled models with the yuface detector); the extras hold the rest: ``train`` (dlib's landmarks
and detectors, matplotlib's plots), ``serve``, ``benchmark``, ``docs`` and ``test``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional top-level module.
EXTRA_OF: dict[str, str] = {
    "dlib": "train", "matplotlib": "train", "fastapi": "serve", "uvicorn": "serve", "python_multipart": "serve",
}  # fmt: skip


def import_optional(module: str, what: str) -> ModuleType:
    """Import an optional dependency, or say how to install it.

    Parameters
    ----------
    module : str
        A key of :data:`EXTRA_OF` (or a submodule of one, e.g. ``"matplotlib.pyplot"``).
    what : str
        What needs it, for the message (e.g. ``"the hog face detector"``).

    Returns
    -------
    module

    Raises
    ------
    ImportError
        One line: what needs which package, and ``pip install 'fer-features[EXTRA]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ImportError(
            f"{what} needs {top}, which is not installed: pip install 'fer-features[{EXTRA_OF.get(top, 'train')}]'"
        ) from None

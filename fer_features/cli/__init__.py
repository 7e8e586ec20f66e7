"""The ``fer`` command line: a thin shell over the library.

Each command lives in its own module and only parses options, calls the library and prints:
``train`` and ``cv`` (:mod:`fer_features.training.run`), ``evaluate`` (:mod:`fer_features.training.evaluation`),
``quantize`` (:mod:`fer_features.cnn.int8`), ``soup`` (:mod:`fer_features.cnn.soup`), ``predict`` and ``serve`` (:class:`fer_features.Recognizer`), ``models`` (:mod:`fer_features.models`), ``benchmark``
(:mod:`fer_features.benchmark.session`), ``data inspect`` (:mod:`fer_features.data.inspection`) and
``list``. Shared options and choices are in :mod:`fer_features.cli.common`; the progress bars
that draw the library's events in :mod:`fer_features.cli.progress`.
"""

from fer_features.cli import (  # noqa: F401  (registers the commands)
    benchmark,
    cv,
    data,
    evaluate,
    listing,
    models,
    predict,
    quantize,
    robustness,
    serve,
    soup,
    train,
)
from fer_features.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console-script shim
    """Run the ``fer`` command; a missing optional dependency is one line naming its extra, exit code 2."""
    from rich.markup import escape

    from fer_features.cli.consoles import err_console

    try:
        app(prog_name="fer")
    except ImportError as exc:
        if "pip install 'fer-features[" not in str(exc):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None

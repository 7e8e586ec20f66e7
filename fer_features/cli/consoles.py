"""The command line's two consoles: results on standard output, messages and progress on standard error."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def wide_console(width: int) -> Console:
    """The console, or one at least ``width`` columns wide when output goes to a pipe or file."""
    return console if console.is_terminal else Console(width=max(console.width, width))

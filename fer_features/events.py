"""Progress events of the library: ``on_event(kind, info)`` callbacks (the CLI draws rich bars from them)."""

from __future__ import annotations

from collections.abc import Callable

#: ``on_event(kind, info)``: see :func:`fer_features.training.run.train` for the kinds.
EventCallback = Callable[[str, dict], None]


def no_events(kind: str, info: dict) -> None:
    """The default ``on_event``: report nothing."""

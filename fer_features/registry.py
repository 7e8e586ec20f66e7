"""One registry type for everything an option can name: feature extractors, classifier heads, face detectors.

A :class:`Registry` maps a name to an :class:`Entry`: a factory, a one-line description, kind
tags (``"histogram block"``, ``"end to end"``, ``"needs a checkpoint"`` …) and the fully
qualified names of the project's own types that a fitted estimator of that entry puts in a
model file. Everything else is derived from the registries, never copied: the CLI's choices,
``fer list``, the skops trust list (:func:`fer_features.persist.trust.trusted_types`) and the
error message for an unknown name, which lists the valid ones.

Importing this module is free: it needs nothing beyond the standard library.

Examples
--------
>>> from fer_features.registry import Registry
>>> shapes = Registry("shape")
>>> shapes.register("square", lambda side=1: ("square", side), "four equal sides", tags={"polygon"})
>>> shapes.create("square", side=2)
('square', 2)
>>> shapes.names(tag="polygon")
('square',)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """What the rest of the code needs to know about one registered name.

    Attributes
    ----------
    name : str
    factory : callable or str
        Builds the object; a string ``"package.module:attribute"`` is imported on first use, so
        registering costs nothing (how the torch-based entries are registered).
    description : str
        One line for ``fer list`` and error messages.
    tags : frozenset of str
        Kinds of the entry, e.g. ``{"end to end", "needs a checkpoint"}``.
    types : tuple of str
        Fully qualified names of the project's estimator types that a fitted object of this
        entry holds (what a ``.skops`` file of it names). A ``"module:Class"`` factory adds
        its own class.
    library_types : tuple of str
        Other libraries' types it holds that skops does not trust by itself.
    requires : str or None
        What must be importable before the factory is called (``"torch"``), named in the
        ``pip install`` hint when it is missing.
    kind : str
        The registry's kind (``"feature"``), for messages.
    """

    name: str
    factory: Callable[..., Any] | str
    description: str
    tags: frozenset[str] = frozenset()
    types: tuple[str, ...] = ()
    library_types: tuple[str, ...] = ()
    requires: str | None = None
    kind: str = ""

    def load(self) -> Callable[..., Any]:
        """The factory, importing a ``"module:attribute"`` reference (and checking ``requires``) first."""
        if self.requires == "torch":
            from fer_features.torch_utils import require_torch

            require_torch(f"the {self.name} {self.kind}".rstrip())
        if isinstance(self.factory, str):
            module, _, attribute = self.factory.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.factory


@dataclass
class Registry:
    """Names → :class:`Entry`, in registration order.

    Parameters
    ----------
    kind : str
        What the entries are (``"feature"``, ``"classifier"``, ``"face detector"``), for messages.
    """

    kind: str
    _entries: dict[str, Entry] = field(default_factory=dict, repr=False)

    def register(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        description: str,
        *,
        tags: Iterable[str] = (),
        types: Iterable[str] = (),
        library_types: Iterable[str] = (),
        requires: str | None = None,
    ) -> Entry:
        """Add (or replace) an entry.

        Parameters
        ----------
        name : str
        factory : callable or str
            See :attr:`Entry.factory`.
        description : str
        tags, types, library_types, requires
            See :class:`Entry`.

        Returns
        -------
        Entry
        """
        types = tuple(types)
        if isinstance(factory, str):
            own = factory.replace(":", ".")
            types = types if own in types else (own, *types)
        elif isinstance(factory, type) and factory.__module__.startswith("fer_features."):
            own = f"{factory.__module__}.{factory.__qualname__}"
            types = types if own in types else (own, *types)
        entry = Entry(name, factory, description, frozenset(tags), types, tuple(library_types), requires, self.kind)
        self._entries[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Entry:
        """The entry of ``name``.

        Raises
        ------
        ValueError
            For an unknown name; the message lists the valid ones.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self._entries)}") from None

    def names(self, tag: str | None = None) -> tuple[str, ...]:
        """The registered names, in order; only those tagged ``tag`` if it is given."""
        return tuple(n for n, e in self._entries.items() if tag is None or tag in e.tags)

    def tagged(self, tag: str) -> frozenset[str]:
        """The names tagged ``tag``, as a set."""
        return frozenset(self.names(tag))

    def describe(self) -> dict[str, str]:
        """Names and their one-line descriptions (``fer list``)."""
        return {n: e.description for n, e in self._entries.items()}

    def factory(self, name: str) -> Callable[..., Any]:
        """The factory of ``name``, imported if it was registered as ``"module:attribute"`` (:meth:`Entry.load`).

        Raises
        ------
        ValueError
            For an unknown name; the message lists the valid ones.
        """
        return self[name].load()

    def create(self, name: str, /, *args, **kwargs) -> Any:
        """Call the factory of ``name`` with the arguments given.

        Raises
        ------
        ValueError
            For an unknown name.
        """
        return self.factory(name)(*args, **kwargs)

    def types(self, *, library: bool = False) -> frozenset[str]:
        """Every project type the entries' objects may hold (:attr:`Entry.types`).

        Parameters
        ----------
        library : bool, default=False
            Add the other libraries' types they hold (:attr:`Entry.library_types`): everything a
            model file of these entries may name beyond what skops trusts by itself.
        """
        return frozenset(t for e in self._entries.values() for t in (*e.types, *(e.library_types if library else ())))

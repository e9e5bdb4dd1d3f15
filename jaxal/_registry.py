"""A name -> function registry; the CLI, the loop and the common tests look methods up here."""

from collections.abc import Callable
from typing import Any


class Registry:
    """Maps names to callables; refuses duplicates and names the options on a miss."""

    def __init__(self, kind: str):
        self._kind = kind
        self._entries: dict[str, tuple[Callable, dict[str, Any]]] = {}

    def register(self, name: str, **tags: Any) -> Callable[[Callable], Callable]:
        """Decorator registering ``fn`` under ``name`` with optional tags (e.g. ``task=``)."""

        def decorate(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"a {self._kind} named {name!r} is already registered")
            self._entries[name] = (fn, tags)
            return fn

        return decorate

    def get(self, name: str) -> Callable:
        """The callable registered as ``name``; ``ValueError`` listing the names otherwise."""
        if name not in self._entries:
            raise ValueError(f"unknown {self._kind} {name!r}; choose one of {self.names()}")
        return self._entries[name][0]

    def tags(self, name: str) -> dict[str, Any]:
        """The tags ``name`` was registered with; ``ValueError`` listing the names otherwise."""
        self.get(name)
        return dict(self._entries[name][1])

    def names(self, **tags: Any) -> list[str]:
        """Sorted names whose tags match all of ``tags``."""
        return sorted(
            name
            for name, (_, own) in self._entries.items()
            if all(own.get(k) == v for k, v in tags.items())
        )

"""One plugin mechanism for every kind of component: a named registry filled lazily.

Built-ins are imported on first lookup (never at import time of loopline), then
entry points of the registry's group (``loopline.steps``, ...), so a user's own
plugin registers exactly like a built-in one. A registry whose built-ins are entry points
themselves (step types) names no module at all.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from loopline.core.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps stable ``type:`` names to components of one kind."""

    def __init__(
        self, kind: str, group: str, builtin_modules: tuple[str, ...] = (), *, instantiate: bool = False
    ) -> None:
        """``instantiate``: an entry point naming a class registers an instance of it (step types)."""
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        self._instantiate = instantiate
        self._items: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        """Register ``item`` under ``name``; a second registration needs ``replace=True``."""
        with self._lock:
            if name in self._items and not replace and self._items[name] is not item:
                raise ConfigError(
                    f"{self.kind} type {name!r} is already registered.",
                    hint="Choose another name, or pass replace=True to override it on purpose.",
                )
            self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The component registered as ``name``; unknown names get a did-you-mean."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            hint = did_you_mean(name, self._items) or f"Known {self.kind} types: {', '.join(sorted(self._items))}."
            raise ConfigError(f"unknown {self.kind} type {name!r}.", key="type", hint=hint) from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for module in self._builtin_modules:
                importlib.import_module(module)
            for entry in entry_points(group=self.group):
                if entry.name not in self._items:
                    item = entry.load()
                    self._items[entry.name] = item() if self._instantiate and isinstance(item, type) else item
            self._loaded = True

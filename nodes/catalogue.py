"""One registry style for every named catalogue of the project: node types, templates, training
recipes and datasets. A registry maps a stable name to an entry, refuses a second entry under a
name (or under a legacy name) as a programming error, keeps legacy names so renamed entries still
resolve, and lists its entries in registration order (as timm's ``_registry.py`` does for models).

It lives in ``nodes/`` because that is the lowest package: every other package may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownEntry(KeyError):
    """A name that no entry (and no legacy name) of a registry carries."""

    def __init__(self, kind: str, name: str, known: Iterable[str] = ()) -> None:
        super().__init__(name)
        self.kind = kind
        self.name = name
        self.known = sorted(known)

    def __str__(self) -> str:
        hint = f"; known: {', '.join(self.known)}" if self.known else ""
        return f"unknown {self.kind} '{self.name}'{hint}"


class Registry(Generic[T]):
    """Name -> entry. ``loader`` (optional) is called once before the first lookup, so a registry
    whose entries register on import (template modules) is complete when first read."""

    def __init__(self, kind: str, *, loader: Callable[[], None] | None = None,
                 unknown: Callable[[str, list[str]], UnknownEntry] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._legacy: dict[str, str] = {}
        self._loader = loader
        self._unknown = unknown or (lambda name, known: UnknownEntry(kind, name, known))

    # -- writing -----------------------------------------------------------------------------
    def add(self, name: str, entry: T, legacy: Iterable[str] = ()) -> T:
        """Register ``entry`` under ``name`` (and its ``legacy`` names). Checks every name before
        registering any, so a refused entry leaves the registry unchanged."""
        legacy = tuple(legacy)
        if name in self._entries or name in self._legacy:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        for old in legacy:
            if old in self._entries or old in self._legacy or old == name:
                raise ValueError(f"legacy name '{old}' of {self.kind} '{name}' is already taken")
        self._entries[name] = entry
        for old in legacy:
            self._legacy[old] = name
        return entry

    def remove(self, name: str) -> None:
        """Drop ``name`` and its legacy names (for entries a test registers for itself)."""
        self._entries.pop(name, None)
        for old, new in list(self._legacy.items()):
            if new == name or old == name:
                del self._legacy[old]

    def register(self, name: str, legacy: Iterable[str] = ()) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        def deco(entry: T) -> T:
            return self.add(name, entry, legacy)
        return deco

    # -- reading -----------------------------------------------------------------------------
    def _load(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader()

    def canonical(self, name: str) -> str:
        """The current name of ``name`` (itself, or what a legacy name was renamed to)."""
        self._load()
        if name in self._entries:
            return name
        if name in self._legacy:
            return self._legacy[name]
        raise self._unknown(name, list(self._entries))

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._legacy

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def entries(self) -> list[T]:
        self._load()
        return list(self._entries.values())

    def legacy_names(self) -> dict[str, str]:
        """Legacy name -> current name."""
        self._load()
        return dict(self._legacy)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

"""A small named registry for each swappable family (detector presets, trackers).

Registering a name twice is a programming error (``ValueError``); asking for an
unknown name is a user error (``ConfigError``) that lists the known names.
"""

from __future__ import annotations

from typing import Callable, Generic, Optional, TypeVar

from tubelets.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to builders of one ``kind`` ("detector preset", "tracker")."""

    def __init__(self, kind: str, check: Optional[Callable[[str, T], None]] = None):
        self.kind = kind
        self._check = check
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def decorate(entry: T) -> T:
            if self._check is not None:
                self._check(name, entry)
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({self._entries[name]!r} and {entry!r})")
            self._entries[name] = entry
            return entry

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: Optional[str]) -> T:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}")
        return self._entries[name]

    def copy(self) -> "Registry[T]":
        """An independent registry with the same entries (tests register into a copy)."""
        twin = Registry(self.kind, self._check)
        twin._entries = dict(self._entries)
        return twin

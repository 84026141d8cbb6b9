"""One registry per kind of contribution (schedules, methods, samplers, networks,
datasets, exporters).

The core registers its own entries at import time; ``studio.plugins`` adds entries
from installed entry points and from the plugins folder a user chose. The CLI, the app
and the tests enumerate these registries instead of hard-coding lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .errors import UnknownNameError


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str = ""
    meta: dict = field(default_factory=dict)


class Registry:
    """Named contributions of one kind, in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, obj: Any = None, *, description: str = "", replace: bool = False, **meta):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def add(o: Any) -> Any:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            doc = description or ((o.__doc__ or "").strip().splitlines() or [""])[0]
            self._entries[name] = Entry(name, o, doc, dict(meta))
            return o

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


SCHEDULES = Registry("schedule")
METHODS = Registry("method")
SAMPLERS = Registry("sampler")
NETWORKS = Registry("network")
DATASETS = Registry("dataset")
EXPORTERS = Registry("exporter")

ALL: dict[str, Registry] = {
    "schedules": SCHEDULES,
    "methods": METHODS,
    "samplers": SAMPLERS,
    "networks": NETWORKS,
    "datasets": DATASETS,
    "exporters": EXPORTERS,
}

Factory = Callable[..., Any]

"""Find and load plugin contributions: installed entry points and one chosen folder.

Two places only, nothing else is ever imported:

* entry points of the group ``studio.plugins`` (``importlib.metadata``): each loads an
  object; a callable is called with the registries (``studio.core.registry.ALL``),
  anything else registered its contributions when its module was imported;
* the plugins folder the user chose: each ``*.py`` directly in it (names starting with
  ``_`` are skipped) is imported under a private module name and registers on import.

A plugin that raises is reported with its name and skipped, never fatal; whatever it
had registered before failing is taken out again so no half-loaded plugin remains.
A file whose source is the same as a plugin already loaded (an entry point of the
installed package, or the same file in another folder) counts as loaded and is not
imported again: the repository's plugins/ is both the package's entry points and a
folder a user may pass.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.core.registry import ALL

GROUP = "studio.plugins"
_MODULE_PREFIX = "_studio_plugin_"

log = logging.getLogger(__name__)


@dataclass
class PluginReport:
    """What one :func:`load_plugins` call did."""

    loaded: list[str] = field(default_factory=list)  # "example.py", "entry point name"
    errors: list[tuple[str, str]] = field(default_factory=list)  # (plugin, "Error: message")
    added: dict[str, list[str]] = field(default_factory=dict)  # registry kind -> new names

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} plugin(s): {', '.join(self.loaded) or '-'}"]
        lines += [f"  {kind}: {', '.join(names)}" for kind, names in self.added.items()]
        lines += [f"failed: {plugin}: {message}" for plugin, message in self.errors]
        return "\n".join(lines)


# Files and entry points loaded in this process, with what each registered, so that a
# second call does not register twice and unload_plugins() can take everything out.
_loaded: dict[str, dict[str, list[str]]] = {}
# sha1 of a loaded plugin's source file -> its key in _loaded
_sources: dict[str, str] = {}
# modules entry points imported: forgotten on unload, so a later load registers again
_entry_modules: set[str] = set()


def _digest(path: str | Path | None) -> str | None:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def _snapshot() -> tuple[dict[str, set[str]], set[str]]:
    return {kind: set(reg.names()) for kind, reg in ALL.items()}, set(sys.modules)


def _added_since(before: tuple[dict[str, set[str]], set[str]]) -> dict[str, list[str]]:
    """Names registered since ``before`` by the plugin itself. A studio module a plugin
    imports for the first time (e.g. studio.engine.export) registers its own built-ins
    then; those are the studio's, never the plugin's (unloading must not remove them)."""
    names, modules = before
    fresh = {m for m in sys.modules if m not in modules and (m == "studio" or m.startswith("studio."))}

    def builtin(obj: Any) -> bool:
        return (getattr(obj, "__module__", None) or type(obj).__module__) in fresh

    added = {kind: [n for n in reg.names() if n not in names[kind] and not builtin(reg.get(n))] for kind, reg in ALL.items()}
    return {kind: names for kind, names in added.items() if names}


def _remove(added: dict[str, list[str]]) -> None:
    for kind, names in added.items():
        for name in names:
            ALL[kind].unregister(name)


def _load_one(label: str, key: str, load: Callable[[], Any], report: PluginReport) -> None:
    if key in _loaded:
        report.loaded.append(label)
        return
    before = _snapshot()
    try:
        load()
    except Exception as e:  # a plugin's failure is its own, never the app's
        _remove(_added_since(before))
        message = f"{type(e).__name__}: {e}"
        report.errors.append((label, message))
        log.warning("plugin %s failed and was skipped: %s", label, message)
        return
    added = _added_since(before)
    _loaded[key] = added
    report.loaded.append(label)
    for kind, names in added.items():
        report.added.setdefault(kind, []).extend(names)


def _load_file(path: Path) -> None:
    # a private, path-derived module name: two folders may both hold "schedules.py"
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"{_MODULE_PREFIX}{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    obj = ep.load()
    if callable(obj):
        obj(ALL)


def load_plugins(folder: str | Path | None = None, entry_points: bool = True) -> PluginReport:
    """Load installed entry points (group ``studio.plugins``) and the ``*.py`` files of
    ``folder`` (only that folder, when given). Returns a :class:`PluginReport`;
    loading the same plugin again in one process is a no-op."""
    report = PluginReport()
    if entry_points:
        for ep in importlib.metadata.entry_points(group=GROUP):
            key = f"ep:{ep.name}={ep.value}"
            _load_one(f"entry point {ep.name} ({ep.value})", key, lambda ep=ep: _load_entry_point(ep), report)
            _entry_modules.add(ep.module)
            module = sys.modules.get(ep.module)
            digest = _digest(getattr(module, "__file__", None)) if key in _loaded else None
            if digest:
                _sources.setdefault(digest, key)
    if folder is not None:
        root = Path(folder).expanduser()
        if not root.is_dir():
            report.errors.append((str(root), "plugins folder not found"))
            return report
        for path in sorted(root.glob("*.py")):
            if path.name.startswith("_"):
                continue
            path = path.resolve()
            digest = _digest(path)
            key = _sources.get(digest, f"file:{path}") if digest else f"file:{path}"
            _load_one(path.name, key, lambda path=path: _load_file(path), report)
            if digest and key in _loaded:
                _sources.setdefault(digest, key)
    return report


def unload_plugins() -> None:
    """Take every plugin contribution out of the registries (e.g. the user picked
    another plugins folder); the next :func:`load_plugins` starts afresh."""
    for added in _loaded.values():
        _remove(added)
    _loaded.clear()
    _sources.clear()
    for name in [m for m in sys.modules if m.startswith(_MODULE_PREFIX) or m in _entry_modules]:
        del sys.modules[name]
    _entry_modules.clear()

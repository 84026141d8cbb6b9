"""Datasets in memory, whatever their source, and the dispatcher of the ``[data]`` config.

Importing this package registers every built-in source in ``DATASETS``: the toy 2-D
sets by their names and the file sources ``digits``, ``folder``, ``array``, ``hdf5``,
``imagefolder`` (a class per subfolder), ``idx`` (MNIST / Fashion-MNIST) and ``cifar``
(CIFAR-10/100 binary batches).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ConfigError
from ..registry import DATASETS
from . import cifar, idx, image_folder, images, toy  # noqa: F401  (register the sources)
from .arrays import LoadCancelled
from .base import Dataset
from .images import list_hdf5_datasets

FILE_SOURCES = ("digits", "array", "hdf5", "folder", "imagefolder", "idx", "cifar")
SOURCES = ("toy",) + FILE_SOURCES
RUNTIME_OPTIONS = ("progress", "cancelled")  # callbacks from the app, not config keys

__all__ = ["Dataset", "LoadCancelled", "load_dataset", "list_hdf5_datasets", "toy_names", "SOURCES"]


def toy_names() -> list[str]:
    """Registered toy 2-D sets (every dataset that is not a file source)."""
    return [n for n, e in ((n, DATASETS.entry(n)) for n in DATASETS.names()) if e.meta.get("kind") == "toy"]


def load_dataset(source: str, **options: Any) -> Dataset:
    """Build the dataset a ``[data]`` config section describes (docs/DESIGN.md 3).

    ``source`` is ``toy`` (``name`` picks the set; ``n``, ``seed``), ``digits``,
    ``array``, ``hdf5`` or ``folder`` (``path``, ``key``, ``resolution``, ``channels``,
    ``limit`` or its alias ``n``), or the name of any other registered dataset (e.g.
    from a plugin). ``progress`` and ``cancelled`` callbacks pass through to loaders
    that take them. Unknown keys and sources raise ``ConfigError`` naming what is allowed.
    """
    options = dict(options)
    if source == "toy":
        name = options.pop("name", None)
        toys = toy_names()
        if name not in toys:
            raise ConfigError(f"data name = {name!r} for source 'toy'; allowed: {', '.join(toys)}")
        label = f"toy {name!r}"
    elif source in DATASETS:
        name, label = source, repr(source)
    else:
        allowed = list(SOURCES) + [n for n in DATASETS.names() if n not in FILE_SOURCES and n not in toy_names()]
        raise ConfigError(f"data source = {source!r}; allowed: {', '.join(allowed)}")

    factory = DATASETS.get(name)
    params = inspect.signature(factory).parameters
    _alias(options, params, "n", "limit")
    _alias(options, params, "limit", "n")
    for key in RUNTIME_OPTIONS:
        if key in options and key not in params:
            options.pop(key)  # instant sources (toy sets) have nothing to report
    unknown = [k for k in options if k not in params]
    if unknown:
        allowed = [p for p in params if p not in RUNTIME_OPTIONS]
        raise ConfigError(f"unknown [data] key {unknown[0]!r} for source {label}; allowed: {', '.join(allowed)}")
    return factory(**options)


def _alias(options: dict[str, Any], params: Any, given: str, accepted: str) -> None:
    """Let ``n`` and ``limit`` stand for each other when a loader takes only one."""
    if given in options and given not in params and accepted in params:
        if accepted in options:
            raise ConfigError(f"[data] keys {given!r} and {accepted!r} mean the same here; give only one")
        options[accepted] = options.pop(given)

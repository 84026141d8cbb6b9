"""The configs shipped with the studio (``resources/configs``, the package data
``studio.resources``), by name.

``diffusion-studio train ddpm_toy`` and the app's preset list both read them from here,
so a user never needs to know where the package is installed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..core.errors import UnknownNameError

RESOURCES = Path(str(resources.files("studio.resources")))  # a folder on disk, installed or editable
PRESET_DIR = RESOURCES / "configs"
APP_ICON = RESOURCES / "icons" / "diffusion-studio.png"


def presets() -> dict[str, Path]:
    """Name (file stem) -> path of every shipped config, sorted by name."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.toml"))}


def preset_path(name: str) -> Path:
    """The shipped config called ``name`` (with or without ``.toml``)."""
    found = presets().get(name.removesuffix(".toml"))
    if found is None:
        raise UnknownNameError(f"no shipped config named {name!r}; shipped configs: {', '.join(presets())}")
    return found

"""The configs shipped with the studio (``studio/resources/configs``), by name.

``diffusion-studio train ddpm_toy`` and the app's preset list both read them from here,
so a user never needs to know where the package is installed.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import UnknownNameError

PRESET_DIR = Path(__file__).resolve().parents[1] / "resources" / "configs"


def presets() -> dict[str, Path]:
    """Name (file stem) -> path of every shipped config, sorted by name."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.toml"))}


def preset_path(name: str) -> Path:
    """The shipped config called ``name`` (with or without ``.toml``)."""
    found = presets().get(name.removesuffix(".toml"))
    if found is None:
        raise UnknownNameError(f"no shipped config named {name!r}; shipped configs: {', '.join(presets())}")
    return found

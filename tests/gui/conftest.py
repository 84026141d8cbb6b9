"""Fixtures for the app's tests: small data, private QSettings, real widgets offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from studio.core.data import load_dataset
from studio.core.schedules import make_schedule
from studio.gui.state import AppState


@pytest.fixture
def state() -> AppState:
    s = AppState()
    s.set_dataset(load_dataset("toy", name="moons", n=300), {"source": "toy", "name": "moons", "n": 300})
    s.add_schedule("linear", make_schedule("linear"))
    return s


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)

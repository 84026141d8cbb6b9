"""Plugins in the app: only from the folder the user chose (and installed entry points);
the panels' lists follow, the folder is remembered, a broken plugin is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.core.registry import DATASETS, SCHEDULES
from studio.gui.app import build_window
from studio.plugins import unload_plugins

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "example_schedule.py"


@pytest.fixture(autouse=True)
def no_plugins_left_behind(monkeypatch):
    # these tests are about the chosen folder: the package's own entry points (the
    # example plugins, tests/plugins/test_examples_in_app.py) stay out of them
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    unload_plugins()
    yield
    unload_plugins()


def families(editor) -> list[str]:
    return [editor.family.itemData(i) for i in range(editor.family.count())]


def test_chosen_folder_adds_names_to_the_panels_and_is_remembered(qtbot, state, settings, tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder)
    (folder / "points.py").write_text(
        "import numpy as np\n"
        "from studio.core.registry import DATASETS\n"
        "from studio.core.data.base import Dataset\n"
        "def line(n=100, seed=0):\n"
        "    x = np.linspace(-1, 1, n, dtype=np.float32)\n"
        "    return Dataset('line', np.stack([x, x], 1), 'points')\n"
        "DATASETS.register('line', line, description='points on a line')\n"
    )
    window = build_window(state, settings=settings)
    qtbot.addWidget(window)
    editor, data = window.panel("schedule"), window.panel("data")
    assert "shifted_cosine" not in families(editor)  # nothing is imported unasked

    window.load_plugins(folder)
    assert "shifted_cosine" in families(editor) and "shifted_cosine" in SCHEDULES
    assert data.source.findData("line") >= 0
    assert "2 loaded" in window.statusBar().currentMessage()

    unload_plugins()
    state.plugins_folder = None
    again = build_window(state, settings=settings)  # next start: the folder is remembered
    qtbot.addWidget(again)
    assert "shifted_cosine" in families(again.panel("schedule"))
    assert "line" in DATASETS


def test_another_folder_replaces_the_first_and_a_broken_plugin_is_named(qtbot, state, settings, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy(EXAMPLE, first)
    (second / "broken.py").write_text("raise RuntimeError('no good')\n")
    window = build_window(state, settings=settings)
    qtbot.addWidget(window)
    window.load_plugins(first)
    assert "shifted_cosine" in families(window.panel("schedule"))

    window.load_plugins(second)
    message = window.statusBar().currentMessage()
    assert "broken.py" in message and "no good" in message
    assert "shifted_cosine" not in families(window.panel("schedule"))
    assert "shifted_cosine" not in SCHEDULES
    window.panel("schedule").add_schedule()  # the window stays usable

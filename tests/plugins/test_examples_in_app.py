"""The example plugins offered in the app's choices (real widgets, offscreen): the
Karras schedule among the schedule editor's families, EDM among the training form's
methods, shapes among the data panel's sources; a broken plugin beside them is named
in the status bar and the window keeps working."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox

from studio.gui.app import build_window, default_state
from studio.plugins import load_plugins, unload_plugins

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(autouse=True)
def only_the_folder(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])  # the folder alone
    unload_plugins()
    yield
    unload_plugins()


def choices(combo: QComboBox) -> set[str]:
    return {combo.itemData(i) for i in range(combo.count())} | {combo.itemText(i) for i in range(combo.count())}


@pytest.mark.slow  # a whole window (~20 s on 2 busy cores); the mechanism: tests/gui/test_plugins_in_app.py
def test_examples_are_offered_and_a_broken_plugin_is_named(qtbot, tmp_path):
    state, settings = default_state(), QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    folder = tmp_path / "plugins"
    folder.mkdir()
    for path in PLUGINS.glob("[!_]*.py"):
        (folder / path.name).write_text(path.read_text())
    (folder / "broken_one.py").write_text("raise RuntimeError('half written')\n")
    window = build_window(state, settings=settings)
    qtbot.addWidget(window)
    families = window.panel("schedule").family  # the schedule editor's family list
    methods = window.panel("training").form.method  # the training form's method list
    sources = window.panel("data").source  # the data panel's sources
    assert "karras" not in choices(families) and "edm" not in choices(methods) and "shapes" not in choices(sources)

    window.load_plugins(folder)
    assert "karras" in choices(families)
    assert "edm" in choices(methods)
    assert "shapes" in choices(sources)
    message = window.statusBar().currentMessage()
    assert "broken_one.py" in message and "half written" in message
    assert "5 loaded" in message  # the five examples
    window.panel("schedule").add_schedule()  # nothing else broke

    data = window.panel("data")  # the shapes load like any source: n and seed from the panel
    data.select_source("shapes")
    data.n.setValue(16)
    data.load()
    qtbot.waitUntil(lambda: not data.loading, timeout=60000)
    assert state.dataset.name == "shapes" and state.dataset.shape == (3, 32, 32) and len(state.dataset) == 16


def test_the_viewer_exports_with_a_plugin_trajectory_exporter(qtbot, tmp_path):
    import xml.etree.ElementTree as ET

    import numpy as np

    from studio.engine.trajectory import TrajectoryWriter
    from studio.gui.panels.viewer.data import TrajectoryData
    from studio.gui.panels.viewer.export import ExportForm

    form = ExportForm()
    qtbot.addWidget(form)
    assert "svg_strip" not in choices(form.kind)
    assert load_plugins(PLUGINS).ok
    form.fill_formats()  # what the viewer does on plugins_changed
    assert "svg_strip" in choices(form.kind)
    path = tmp_path / "t.h5"
    with TrajectoryWriter(path, 5, (30, 2), {"data_kind": "points", "sampler": "ddim"}) as w:
        for i in range(5):
            x = np.random.default_rng(i).normal(size=(30, 2)) * (5 - i)
            w.append(i, 1 - i / 5, 0.0, float(5 - i), x, x, x)
        w.finish(x)
    data = TrajectoryData(path)
    form.set_data(data)
    out = form.export_to("svg_strip", tmp_path / "strip.svg")
    assert out is not None, "export failed"
    texts = [t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert [t for t in texts if t.startswith("step")] == [f"step {i}" for i in range(5)]

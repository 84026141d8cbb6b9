"""The main window: panels, menus, status bar, QSettings round trip, app entry point."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel

from studio.gui.app import build_window, default_state, parse_args
from studio.gui.main_window import MainWindow
from studio.gui.panels import PANELS


def make_window(qtbot, state, settings):
    w = build_window(state, settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_default_state_shows_data_and_a_schedule():
    state = default_state()
    assert state.dataset is not None and state.dataset.kind == "points"
    assert [e.schedule.family for e in state.schedules] == ["linear"]
    assert state.training_schedule is state.schedules[0].schedule


def test_every_panel_is_docked_with_a_view_toggle(qtbot, state, settings):
    w = make_window(qtbot, state, settings)
    keys = [spec.key for spec in PANELS]
    assert list(w.docks) == keys and w.panels == {}  # built when first needed
    assert all(w.docks[k].widget().text() == f"Loading {w.docks[k].windowTitle()}…" for k in keys)
    built = []
    w.panel_built.connect(built.append)
    for key in keys:
        panel = w.panel(key)
        assert w.docks[key].widget() is panel is w.panel(key)  # built once, in the dock
    assert built == keys and list(w.panels) == keys
    view_texts = [a.text() for a in w.view_menu.actions()]
    for spec in PANELS:
        assert spec.title in view_texts
        assert w.docks[spec.key].isVisible()
    assert w.device_label.text() in ("CPU",) or w.device_label.text().startswith("CUDA")
    menus = [a.text().replace("&", "") for a in w.menuBar().actions()]
    assert menus == ["File", "View", "Help"]


def test_show_progress(qtbot, state, settings):
    w = make_window(qtbot, state, settings)
    w.show_progress("training", 0.25)
    assert w.progress_bar.isVisible() and w.progress_bar.value() == 250
    assert w.progress_label.text() == "training"
    w.show_progress("loading", None)
    assert w.progress_bar.maximum() == 0  # busy
    w.clear_progress()
    assert not w.progress_bar.isVisible()


def test_add_panel_later_and_tabify(qtbot, state, settings):
    w = make_window(qtbot, state, settings)
    dock = w.add_panel("extra", "Extra", QLabel("extra panel"), area="right", tabify_with="schedule")
    assert dock.objectName() == "extra" and w.panel("extra").text() == "extra panel"
    # Qt lays out tabs of a window on screen lazily
    qtbot.waitUntil(lambda: dock in w.tabifiedDockWidgets(w.docks["schedule"]), timeout=2000)
    assert "Extra" in [a.text() for a in w.view_menu.actions()]


def test_layout_and_geometry_round_trip(qtbot, state, settings, tmp_path):
    w = make_window(qtbot, state, settings)
    w.docks["data"].hide()
    # the offscreen screen is 800 x 800 and restoreGeometry clamps to it: the window's
    # minimum width is above that, so the height carries the round trip
    w.resize(w.width(), 700)
    qtbot.waitUntil(lambda: w.height() == 700)
    w.close()  # saves
    w2 = make_window(qtbot, default_state(), QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert w2.height() == 700
    assert not w2.docks["data"].isVisible() and w2.docks["schedule"].isVisible()
    w2.docks["data"].toggleViewAction().trigger()  # View menu brings it back
    assert w2.docks["data"].isVisible()


def test_recent_runs_and_data_are_remembered(qtbot, state, settings, tmp_path):
    w = make_window(qtbot, state, settings)
    run = tmp_path / "run1"
    run.mkdir()
    w.open_run(run)
    assert state.run_dir == run
    w.open_run(tmp_path / "missing")  # a bad path is a message, not a crash
    assert state.run_dir == run and "missing" in w.statusBar().currentMessage()
    import numpy as np
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32))
    data = w.panel("data")
    data.select_source("array")
    data.path.setText(str(tmp_path / "p.npy"))
    data.load()
    qtbot.waitUntil(lambda: not data.loading, timeout=5000)
    again = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    assert again.value("recent_runs") in ([str(run)], str(run))
    recent = again.value("recent_data")
    recent = [recent] if isinstance(recent, str) else recent
    assert json.loads(recent[0])["path"] == str(tmp_path / "p.npy")
    assert w.recent_runs_menu.actions()[0].data() == str(run)
    # reopening a recent data entry loads it again
    data.select_source("toy", "moons")
    data.load()
    qtbot.waitUntil(lambda: not data.loading, timeout=5000)
    w.recent_data_menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: not data.loading and state.dataset.meta.get("source") == "array", timeout=5000)


def test_export_plots(qtbot, state, settings, tmp_path):
    w = make_window(qtbot, state, settings)
    written = w.export_plots(tmp_path)
    names = sorted(p.name for p in written)
    # each panel's figures (panels added later bring their own)
    assert {"data_preview.png", "schedule_log_snr.png", "schedule_plots.png", "training_plots.png"} <= set(names)
    assert all(p.stat().st_size > 1000 for p in written)


def test_panels_build_in_turns_visible_first_and_a_raised_tab_next(qtbot, state, settings):
    w = make_window(qtbot, state, settings)
    visible = [k for k in w.docks if not w.docks[k].visibleRegion().isEmpty()]
    assert visible == ["data", "schedule"]  # the default layout: the others are tabs behind the editor
    built = []
    w.panel_built.connect(built.append)
    # the user brings a tab up while the others load (here: as the first one is in): it goes next
    w.panel_built.connect(lambda key: w.docks["runs"].raise_() if key == "data" else None)
    with qtbot.waitSignal(w.all_panels_built, timeout=60000):
        w.build_panels_in_turns()
        assert built == []  # nothing yet: each build runs in a later turn of the event loop
    assert built[:3] == ["data", "runs", "schedule"] and sorted(built) == sorted(w.docks)
    assert w.statusBar().currentMessage() == "Ready"


def test_grab_is_not_blank(qtbot, state, settings):
    w = make_window(qtbot, state, settings)
    for key in w.docks:
        w.panel(key)
    image = w.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 37)}
    assert len(colours) > 5


def test_parse_args_keeps_run_dir():
    assert parse_args([]).run_dir is None
    assert parse_args(["runs/a"]).run_dir == "runs/a"
    state = default_state("runs/a")
    assert str(state.run_dir) == "runs/a"


def test_reset_layout_leaves_no_stray_tab_bar(qtbot, state, settings):
    """Re-tabbing docks that were already tabbed left Qt's old tab bar on screen over the
    panels; every tab bar showing inside the window is a live one, each tab shown once."""
    from PySide6.QtWidgets import QTabBar

    w = make_window(qtbot, state, settings)
    w.reset_layout()
    w.reset_layout()
    qtbot.wait(50)
    inside = [bar for bar in w.findChildren(QTabBar)
              if bar.isVisible() and bar.count() and w.rect().intersects(bar.geometry())]
    titles = [bar.tabText(i) for bar in inside for i in range(bar.count())]
    assert titles and len(titles) == len(set(titles))

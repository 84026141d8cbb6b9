"""The Samplers panel through the real MainWindow: open a run, tick two samplers, Run;
the plot fills in with one curve per sampler; hover shows a cell's samples; a click on a
point opens that cell's trajectory in the viewer; CSV and figure export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from studio.engine.jobs import train_job
from studio.engine.trajectory import TrajectoryReader
from studio.gui.app import build_window

TINY = {
    "data": {"source": "toy", "name": "moons", "n": 2000},
    "schedule": {"steps": 50},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 150, "batch_size": 128, "log_every": 50, "checkpoint_every": 150, "preview_every": 1000},
}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("samplers") / "run"
    for _ in train_job(TINY, path):
        pass
    return path


@pytest.fixture
def window(qtbot, state, settings):
    w = build_window(state, settings=settings)
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    qtbot.waitExposed(w)
    yield w
    for key in ("samplers", "viewer"):
        w.panel(key).shutdown()


def point_position(panel, nfe: float, y: float):
    """Widget coordinates of a data point of the (log-x) plot."""
    vb = panel.plot_item.getViewBox()
    ly = np.log10(y) if panel.plot_item.ctrl.logYCheck.isChecked() else y
    scene = vb.mapViewToScene(QPointF(float(np.log10(nfe)), float(ly)))
    return panel.plot.mapFromScene(scene)


def move_mouse(widget, pos) -> None:
    """A real mouse-move event with no button held (QTest's mouseMove only moves the
    cursor, which sends nothing on the offscreen platform)."""
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    local = QPointF(pos)
    event = QMouseEvent(QMouseEvent.Type.MouseMove, local, widget.mapToGlobal(local), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_journey_run_two_samplers_plot_fills_click_opens_the_viewer(qtbot, window, state, toy_run, tmp_path):
    panel = window.panel("samplers")
    state.set_run_dir(toy_run)
    window.raise_panel("samplers")
    names = [panel.sampler_list.item(k).text() for k in range(panel.sampler_list.count())]
    assert {"ancestral", "ddim", "langevin"} <= set(names)
    assert panel.checkpoint.currentText().startswith("step_")
    panel.set_ticked(["ancestral", "ddim"])
    panel.budgets.setText("2, 5, 20")
    panel.n.setValue(200)
    with qtbot.waitSignal(panel.bridge.ended, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert not panel.run_button.isEnabled()
    rows = panel.session.rows
    assert [(r["sampler"], r["nfe"]) for r in rows] == [("ancestral", 2), ("ancestral", 5), ("ancestral", 20), ("ddim", 2), ("ddim", 5), ("ddim", 20)]
    assert panel.score() == "sliced_wasserstein"
    for name in ("ancestral", "ddim"):
        x, y = panel.curve_data(name)
        np.testing.assert_array_equal(x, [2, 5, 20])
        np.testing.assert_allclose(y, [r["sliced_wasserstein"] for r in rows if r["sampler"] == name])
    assert "Done: 6 cells" in panel.status.text()

    # hover over ddim's 5-NFE point: that cell's samples under the plot
    qtbot.wait(50)
    hovered = panel.session.cells[4]
    assert (hovered.row["sampler"], hovered.row["nfe"]) == ("ddim", 5)
    move_mouse(panel.plot.viewport(), point_position(panel, 5, hovered.row["sliced_wasserstein"]))
    qtbot.waitUntil(lambda: panel.shown_cell == 4, timeout=5_000)
    assert panel.preview.currentWidget() is panel.points and "ddim, 5 steps, 5 NFE" in panel.preview_label.text()
    shown = panel.points.scatter.getData()
    np.testing.assert_allclose(shown[0], panel.session.cells[4].points[:, 0], rtol=1e-6)

    # a real click on ddim's 20-NFE point opens that trajectory in the viewer
    target = panel.session.cells[5]
    assert target.row["sampler"] == "ddim" and target.row["nfe"] == 20
    qtbot.wait(50)
    pos = point_position(panel, 20, target.row["sliced_wasserstein"])
    viewer = window.panel("viewer")
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: viewer.data is not None and str(viewer.data.path) == target.trajectory, timeout=10_000)
    reader = TrajectoryReader(target.trajectory)
    assert viewer.timeline.count == len(reader) == 20
    np.testing.assert_allclose(viewer.data.samples(), reader.samples(), atol=1e-3)
    reader.close()

    # exports
    table = panel.export_csv(tmp_path / "t.csv")
    with open(table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    for suffix in ("png", "svg"):
        out = panel.export_figure(tmp_path / f"f.{suffix}")
        assert out.stat().st_size > 1000


def test_bad_budgets_and_no_sampler_are_shown_not_raised(qtbot, window, state, toy_run):
    panel = window.panel("samplers")
    state.set_run_dir(toy_run)
    panel.budgets.setText("5, ten")
    assert not panel.start() and "ten" in panel.banner.text()
    panel.budgets.setText("5")
    panel.set_ticked([])
    assert not panel.start() and "Tick at least one" in panel.banner.text()
    assert not panel.bridge.running


def test_every_built_in_sampler_gets_its_own_curve_style():
    """More samplers than colours (11 built-in, 8 colours): past the palette the curves
    change marker and dash, so every sampler ticked at once is told apart."""
    from studio.core.registry import SAMPLERS
    from studio.gui.panels.samplers.panel import COLORS, curve_style

    n = max(len(SAMPLERS.names()), 4 * len(COLORS))
    styles = [curve_style(k) for k in range(n)]
    assert len(set(styles)) == n
    assert styles[0] == (COLORS[0], "o", Qt.PenStyle.SolidLine)

"""The schedule editor driven through its real widgets (offscreen)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from studio.core.data import load_dataset
from studio.core.registry import SCHEDULES
from studio.core.schedules import make_schedule
from studio.gui.panels.schedule.control_points import clamp_point
from studio.gui.panels.schedule.diagnostics import diagnose, prior_kl_bits
from studio.gui.panels.schedule import ScheduleEditor


@pytest.fixture
def editor(qtbot, state):
    w = ScheduleEditor(state)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def choose_family(editor, family):
    index = editor.family.findData(family)
    editor.family.setCurrentIndex(index)
    editor.family.activated.emit(index)


def test_families_come_from_the_registry(editor):
    assert [editor.family.itemData(i) for i in range(editor.family.count())] == SCHEDULES.names()


def test_parameter_change_moves_the_curves(editor, qtbot):
    _, before = editor.plots.curve_data(0, "log_snr")
    field = editor.form.editors["beta_end"]
    field.setText("0.04")
    field.textEdited.emit("0.04")
    qtbot.waitUntil(lambda: editor.state.schedules[0].schedule.params()["beta_end"] == 0.04, timeout=2000)
    _, after = editor.plots.curve_data(0, "log_snr")
    assert after.shape == before.shape and not np.allclose(after, before)
    assert after[-1] < before[-1]  # larger betas leave less signal at t = T


def test_bad_parameter_is_shown_and_last_curves_stay(editor, qtbot):
    _, before = editor.plots.curve_data(0, "log_snr")
    field = editor.form.editors["beta_end"]
    field.setText("1.5")
    assert editor.apply_parameters() is False
    assert editor.banner.isVisible() and "beta_end" in editor.banner.text()
    assert "border" in field.styleSheet()
    np.testing.assert_array_equal(editor.plots.curve_data(0, "log_snr")[1], before)
    field.setText("not a number")
    assert editor.apply_parameters() is False and "beta_end" in editor.banner.text()
    field.setText("0.02")  # the window stays usable: a good value clears the message
    assert editor.apply_parameters() is True
    assert not editor.banner.isVisible()


def test_every_family_builds_a_form_and_plots(editor):
    for family in SCHEDULES.names():
        choose_family(editor, family)
        assert editor.state.schedules[0].schedule.family == family
        _, y = editor.plots.curve_data(0, "log_snr")
        assert np.isfinite(y).sum() > 10, family
        editor.update_diagnostics()
        assert editor.diag_labels["steps"].text() == str(editor.state.schedules[0].schedule.steps)


def test_ve_schedule_gets_a_log_sigma_axis(editor):
    choose_family(editor, "geometric")
    assert editor.plots.plots["sigma"].getAxis("left").logMode
    choose_family(editor, "linear")
    assert not editor.plots.plots["sigma"].getAxis("left").logMode


def test_overlay_add_rename_remove(editor, state):
    editor.add_schedule()
    assert len(state.schedules) == 2 and len(editor.plots.legend.items) == 2
    assert state.schedules[0].color != state.schedules[1].color
    item = editor.list.item(1)
    item.setText("mine")
    assert state.schedules[1].name == "mine"
    assert [label.text for _, label in editor.plots.legend.items] == ["linear", "mine"]
    editor.list.setCurrentRow(1)
    editor.remove_selected()
    assert len(state.schedules) == 1 and len(editor.plots.legend.items) == 1


def drag(widget, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """Press, move and release the left button in the view's viewport, as a user drags."""
    vp = widget.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier

    def send(kind, pos, button, buttons):
        ev = QMouseEvent(kind, pos, vp.mapToGlobal(pos), button, buttons, mods)
        QApplication.sendEvent(vp, ev)

    send(QEvent.Type.MouseButtonPress, start, left, left)
    for k in range(1, steps + 1):
        send(QEvent.Type.MouseMove, start + (end - start) * (k / steps), none, left)
    send(QEvent.Type.MouseButtonRelease, end, left, none)


def test_dragging_a_control_point_keeps_the_curve_monotone(editor, qtbot, state):
    choose_family(editor, "custom")
    points = np.array(state.schedules[0].schedule.points)
    assert len(points) >= 3
    k = 1
    plot = editor.plots.plots["log_snr"]
    _, other_before = editor.plots.curve_data(0, "alpha_bar")
    # drag point k far above its left neighbour: it must stop just below it
    start = editor.plots.mapFromScene(plot.vb.mapViewToScene(QPointF(*points[k])))
    target = editor.plots.mapFromScene(plot.vb.mapViewToScene(QPointF(points[k, 0], points[0, 1] + 5)))
    drag(editor.plots, QPointF(start), QPointF(target))
    moved = np.array(state.schedules[0].schedule.points)
    assert moved[k, 1] > points[k, 1]  # it moved
    assert np.all(np.diff(moved[:, 1]) < 0) and np.all(np.diff(moved[:, 0]) > 0)
    _, lam = editor.plots.curve_data(0, "log_snr")
    assert np.all(np.diff(lam[np.isfinite(lam)]) < 1e-9)
    _, other_after = editor.plots.curve_data(0, "alpha_bar")
    assert not np.allclose(other_before, other_after)  # the other plots followed


def test_clamp_point_keeps_neighbours_order():
    pts = np.array([[0.0, 10.0], [0.5, 0.0], [1.0, -10.0]])
    assert clamp_point(pts, 1, 0.9999, 50.0)[1] < 10.0
    assert clamp_point(pts, 1, 2.0, -50.0)[0] < 1.0
    assert clamp_point(pts, 0, 0.3, 4.0) == (0.0, pytest.approx(4.0))
    assert clamp_point(pts, 2, 0.3, 4.0)[0] == 1.0 and clamp_point(pts, 2, 0.3, 4.0)[1] < 0.0


def test_save_and_reload_json(editor, state, tmp_path):
    choose_family(editor, "cosine")
    editor.form.editors["s"].setText("0.02")
    assert editor.apply_parameters()
    path = editor.save_schedule(tmp_path / "cos.json")
    assert json.loads(path.read_text())["s"] == 0.02
    index = editor.load_schedule(path)
    assert index == 1 and state.schedules[1].name == "cos"
    np.testing.assert_allclose(state.schedules[1].schedule.betas, state.schedules[0].schedule.betas)
    assert editor.form.editors["s"].text() == "0.02"


def test_bad_json_is_named(editor, state, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"family": "linear", "beta_end": 2.0}')
    assert editor.load_schedule(bad) == -1
    assert "bad.json" in editor.banner.text() and "beta_end" in editor.banner.text()
    bad.write_text("{not json")
    assert editor.load_schedule(bad) == -1 and "bad.json" in editor.banner.text()
    assert len(state.schedules) == 1


def test_use_for_training_sets_state(editor, state, qtbot):
    editor.add_schedule()
    got = []
    state.training_schedule_changed.connect(got.append)
    editor.list.setCurrentRow(1)
    editor.train_button.click()
    assert state.training_schedule is state.schedules[1].schedule and got
    assert editor.train_label.text().endswith(state.schedules[1].name)


def test_hover_reads_values(editor, qtbot):
    plot = editor.plots.plots["alpha_bar"]
    pos = editor.plots.mapFromScene(plot.vb.mapViewToScene(QPointF(0.25, 0.5)))
    vp = editor.plots.viewport()
    ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), vp.mapToGlobal(QPointF(pos)), Qt.MouseButton.NoButton,
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(editor.plots.hovered, timeout=1000) as blocker:
        QApplication.sendEvent(vp, ev)
    assert blocker.args[0] == pytest.approx(0.25, abs=0.01)
    assert f"t = {blocker.args[0]:.3f}" in editor.readout.text() and "linear" in editor.readout.text()


def test_forward_preview_uses_the_same_noise(editor, state):
    p = editor.preview
    ts = [0.0, 0.5, 1.0]
    x = p.noised(ts).numpy()
    alpha, sigma = (v.numpy() for v in state.schedules[0].schedule.alpha_sigma(torch.tensor(ts, dtype=torch.float64)))
    for k in range(len(ts)):  # undo the display scale, then recover one and the same eps
        x_t = x[k] * np.hypot(alpha[k], sigma[k])
        np.testing.assert_allclose((x_t - alpha[k] * p._x0.numpy()) / sigma[k], p._eps.numpy(), atol=1e-6)


def test_forward_preview_images(editor, state, qtbot):
    state.set_dataset(load_dataset("digits", limit=40))
    editor.preview.set_t(0.3)
    editor.preview.redraw()
    assert editor.preview.stack.currentWidget() is editor.preview._images_page
    assert editor.preview.strip_images.image.image is not None


def test_diagnostics_closed_forms(state):
    sched = make_schedule("linear")  # docs/DESIGN.md: sqrt(abar_T) = 0.0063528
    x = state.dataset.data
    a2, s2 = 0.0063528**2, 0.9999596
    d = x.shape[1]
    expected = 0.5 * (a2 * float((x.double() ** 2).sum(1).mean()) + d * (s2 - 1 - np.log(s2))) / (d * np.log(2))
    assert prior_kl_bits(sched, x) == pytest.approx(expected, rel=1e-3)
    diag = diagnose(sched, x)
    assert diag.terminal_snr == pytest.approx(a2 / s2, rel=1e-3) and not diag.warnings
    short = diagnose(make_schedule("linear", steps=10), x)  # too few steps: signal left, jumps
    assert len(short.warnings) == 2
    assert diagnose(make_schedule("vdm_fixed", gamma_min=-5, gamma_max=5), x).t_snr_one == pytest.approx(0.5, abs=1e-3)


def test_export_png(editor, tmp_path):
    paths = editor.export_plots(tmp_path)
    assert [p.name for p in paths] == ["schedule_plots.png", "schedule_log_snr.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_slider_redraws_the_preview_at_its_t(editor, qtbot):
    editor.preview.slider.setValue(350)
    qtbot.waitUntil(lambda: editor.preview.t_label.text().startswith("t = 0.350"), timeout=300)

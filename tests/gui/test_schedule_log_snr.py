"""The schedule editor's log-SNR view and advisor, driven through the real editor (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from studio.core import noise_levels as nl
from studio.core.advisor import max_pairwise_distance
from studio.core.schedules import make_schedule
from studio.gui.panels.schedule import ScheduleEditor


@pytest.fixture
def editor(qtbot, state):
    state.add_schedule("cosine", make_schedule("cosine"))
    state.add_schedule("vdm", make_schedule("vdm_fixed", gamma_min=-13.3, gamma_max=5.0))
    w = ScheduleEditor(state)
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    qtbot.waitExposed(w)
    w.views.setCurrentWidget(w.lambda_view)
    return w


def choose(combo, data):
    index = combo.findData(data)
    assert index >= 0, data
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_density_of_every_schedule_is_drawn(editor):
    items = editor.lambda_view.plots._density_items
    assert len(items) == 3
    x, y = items[2].getData()  # vdm_fixed: uniform on [-5, 13.3]
    np.testing.assert_allclose(y, 1 / 18.3, rtol=1e-6)
    assert x.min() == pytest.approx(-5.0) and x.max() == pytest.approx(13.3)
    d = nl.log_snr_density(editor.state.schedules[1].schedule)  # the discrete cosine: its histogram
    assert d.kind == "histogram"
    x, y = items[1].getData()
    np.testing.assert_allclose(x, d.edges)
    np.testing.assert_allclose(y, d.density)
    # the band shares of the selected (linear, T = 1000) schedule in the diagnostics
    assert editor.lambda_view.bands_label.text() == "λ < -5: 29.8% · -5 <= λ <= 5: 68.1% · λ > 5: 2.1%"
    editor.select(2)
    assert "λ > 5: 45.4%" in editor.lambda_view.bands_label.text()  # 8.3 / 18.3


def test_grid_ticks_and_largest_jump(editor, qtbot):
    view = editor.lambda_view
    editor.select(2)
    choose(view.grid, "uniform_log_snr")
    view.grid_steps.setValue(11)
    x, y = view.plots.ticks.getData()
    ticks = nl.grid_ticks(editor.state.schedules[2].schedule, 11, grid="uniform_log_snr")
    np.testing.assert_allclose(x, np.repeat(ticks.log_snr, 2))
    assert len(x) == 22 and y[0] == 0 and y[1] > 0
    np.testing.assert_allclose(np.diff(ticks.log_snr), ticks.largest_jump, rtol=1e-6)
    assert f"largest λ jump {ticks.largest_jump:.3g}" in view.grid_label.text()
    choose(view.grid, "karras")
    assert view.ticks.largest_jump != ticks.largest_jump


def test_weights_and_effective_weight(editor, qtbot):
    view = editor.lambda_view
    names = [view.weighting.itemData(i) for i in range(view.weighting.count())]
    assert names[:4] == ["eps_mse", "x0_mse", "v_mse", "vdm_elbo"]
    item = view.plots._weight_items["x0_mse"]
    x, y = item.xData, item.yData  # as given (getData is the log10 drawn on a log axis)
    ok = np.isfinite(y)
    np.testing.assert_allclose(np.log(y[ok][0] / y[ok][-1]), x[ok][-1] - x[ok][0], rtol=1e-6)  # e^-lambda
    choose(view.weighting, "vdm_elbo")
    for i, entry in enumerate(editor.state.schedules):
        item = view.plots._effective_items[i]
        x, y = item.xData, item.yData
        if entry.schedule.family == "vdm_fixed":  # p * w = 1/2 on [-5, 13.3], normalised
            np.testing.assert_allclose(y, 1 / 18.3, rtol=1e-5)
    # editing a schedule redraws its density and effective weight
    before = view.plots._density_items[2].getData()[0].copy()
    editor.state.set_schedule(2, make_schedule("vdm_fixed", gamma_min=-10.0, gamma_max=6.0))
    qtbot.waitUntil(lambda: view.plots._density_items[2].getData()[0].min() == pytest.approx(-6.0), timeout=3000)
    assert before.min() == pytest.approx(-5.0)
    # a hidden tab is not redrawn until it is shown again
    editor.select(2)
    editor.views.setCurrentWidget(editor.plots)
    editor.state.set_schedule(2, make_schedule("vdm_fixed", gamma_min=-12.0, gamma_max=6.0))
    qtbot.wait(200)
    assert view.plots._density_items[2].getData()[0].max() == pytest.approx(10.0)
    assert "λ > 5: 38.9%" in view.bands_label.text()  # the diagnostics follow at once: 7 / 18
    editor.views.setCurrentWidget(view)
    assert view.plots._density_items[2].getData()[0].max() == pytest.approx(12.0)


@pytest.mark.slow  # trains a real 60-step run first
def test_a_runs_loss_by_noise_level_is_overlaid(editor, qtbot, tmp_path):
    from studio.engine.jobs import train_job
    from studio.engine.presets import preset_path
    from studio.engine.runs import RunDir

    run = tmp_path / "run"
    for _ in train_job(preset_path("quick_toy"), run, steps=60):
        pass
    editor.state.set_run_dir(run)
    view = editor.lambda_view
    x, y = view.plots.loss_curve.getData()
    assert x is not None and len(x) >= 5
    assert "step 60" in view.loss_label.text()
    # the mean loss of the pairs in each bin, from the metrics rows themselves
    rows = [r for r in RunDir(run).metrics() if r.get("level_log_snr")][-8:]
    lam = np.concatenate([r["level_log_snr"] for r in rows])
    loss = np.concatenate([r["level_loss"] for r in rows])
    edges = np.linspace(lam.min(), lam.max(), 33)
    k = np.clip(np.searchsorted(edges, lam, side="right") - 1, 0, 31)
    means = [loss[k == j].mean() for j in range(32) if (k == j).any()]
    np.testing.assert_allclose(y, means, rtol=1e-9)
    view.show_loss.setChecked(False)
    assert len(view.plots.loss_curve.getData()[0] if view.plots.loss_curve.getData()[0] is not None else []) == 0


def wait_for_advice(qtbot, editor):
    qtbot.mouseClick(editor.advisor.suggest_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.advisor.apply_button.isEnabled(), timeout=20000)
    return editor.advisor.advice


def test_advisor_suggests_and_apply_adds_the_schedule(editor, qtbot):
    advice = wait_for_advice(qtbot, editor)
    assert "lambda_max" in editor.advisor.text.text() and "lambda_min" in editor.advisor.text.text()
    qtbot.mouseClick(editor.advisor.apply_button, Qt.MouseButton.LeftButton)
    entries = editor.state.schedules
    assert len(entries) == 4 and entries[3].name == "advised linear" and editor.current == 3
    lam = entries[3].schedule.log_snr_steps
    assert float(lam[0]) == pytest.approx(advice.value("lambda_max"), abs=0.02)
    assert float(lam[-1]) == pytest.approx(advice.value("lambda_min"), abs=0.02)
    assert len(editor.lambda_view.plots._density_items) == 4


def test_advisor_on_a_geometric_schedule(editor, qtbot):
    editor.select(0)
    index = editor.family.findData("geometric")
    editor.family.setCurrentIndex(index)
    editor.family.activated.emit(index)
    advice = wait_for_advice(qtbot, editor)
    data = editor.state.dataset.data.double()
    assert advice.value("sigma_max") == pytest.approx(float(torch.cdist(data, data).max()), rel=1e-9)
    assert "technique 1" in editor.advisor.text.text()
    editor.state.set_dataset(editor.state.dataset, {})  # new data: the advice is stale
    assert not editor.advisor.apply_button.isEnabled()

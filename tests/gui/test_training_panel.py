"""The training monitor with real (tiny) training runs: start from the button, see the
plots fill, pause, resume, stop, reopen and resume the run; TOML the CLI accepts; bad
keys named; NaN stops; closing the window while training saves a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.engine.config import load_config
from studio.engine.events import Finished, Progress
from studio.engine.runs import RunDir
from studio.engine.trainer import warm_up
from studio.engine.presets import PRESET_DIR
from studio.gui.panels.training import TrainingPanel
from tests.engine.procs import tiny_config


def tiny_toml(tmp_path: Path, steps: int = 20000, lr: str = "2e-3", warmup: int = 10, ckpt: int = 200, **sections) -> Path:
    """procs.TINY with previews on, betas up to 0.2 and seed 0 (``sections``: see procs.tiny_toml)."""
    train = {"lr": float(lr), "warmup": warmup, "preview_every": 100, "preview_n": 64, "preview_steps": 5, "seed": 0,
             "threads": None}
    changes = {"schedule": {"beta_start": 1e-3, "beta_end": 0.2}, **sections}
    changes["train"] = {**train, **changes.get("train", {})}
    return tiny_config(tmp_path, steps, ckpt, **changes)


@pytest.fixture
def panel(qtbot, state, tmp_path):
    warm_up()  # the app does this at start-up (docs/PITFALLS.md)
    p = TrainingPanel(state)
    qtbot.addWidget(p)
    p.runs_root.setText(str(tmp_path / "runs"))
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()


def poll_and_step(panel: TrainingPanel, qtbot) -> int:
    """Deliver what the worker queued, then the last step the monitor knows."""
    panel.bridge.poll()
    return panel.history.step


def test_start_pause_resume_stop_and_reopen(qtbot, panel, tmp_path):
    assert panel.load_toml(tiny_toml(tmp_path))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.mode == "training" and not panel.start_button.isEnabled()
    run_dir = panel.run_dir
    announced = []
    panel.state.run_dir_changed.connect(lambda path: announced.append((path, (path / "config.toml").is_file())))
    # the viewer picks the run up on the job's Started, once its folder exists
    qtbot.waitUntil(lambda: panel.state.run_dir == run_dir, timeout=30_000)
    assert announced == [(run_dir, True)]

    # the plots receive data: curves, the loss-by-level curve and the heatmap image
    qtbot.waitUntil(lambda: panel.history.step >= 150, timeout=30_000)
    panel.refresh()
    x, y = (panel.plots.curves["loss_smooth"].xData, panel.plots.curves["loss_smooth"].yData)
    assert len(x) >= 30 and np.all(np.isfinite(y))
    assert len(panel.plots.curves["grad_norm"].xData) == len(x)
    assert len(panel.plots.curves["samples_per_s"].xData) == len(x)
    assert len(panel.plots.curves["memory"].xData) == len(x)
    assert len(panel.plots.curves["levels"].xData) >= 10  # log-SNR bins with losses
    image = panel.plots.heatmap.image
    assert image is not None and image.shape[0] >= 2 and np.isfinite(image).sum() > 20
    assert "samples/s" in panel.status_label.text() and "ETA" in panel.status_label.text()
    qtbot.waitUntil(lambda: any("preview at step" in m for _, m in panel.log.lines), timeout=30_000)

    # pause: no step advances
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.bridge.paused and panel.pause_button.text() == "Resume"
    qtbot.wait(200)  # the step in flight lands
    paused_at = poll_and_step(panel, qtbot)
    rows_at = len(RunDir(run_dir).metrics())
    qtbot.wait(300)
    assert poll_and_step(panel, qtbot) == paused_at
    assert len(RunDir(run_dir).metrics()) == rows_at

    # resume: steps advance again
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert not panel.bridge.paused and panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.history.step > paused_at + 20, timeout=20_000)

    # stop: a checkpoint at the last step, status cancelled
    with qtbot.waitSignal(panel.bridge.ended, timeout=30_000) as ended:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    last = ended.args[0]
    assert isinstance(last, Finished) and last.result["cancelled"]
    run = RunDir(run_dir)
    assert run.status()["state"] == "cancelled"
    assert run.latest_checkpoint().name == f"step_{last.step:08d}.safetensors"
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.continue_button.isEnabled()
    stopped = last.step

    # reopen the run in a fresh panel: the plots hold its past metrics
    other = TrainingPanel(panel.state)
    qtbot.addWidget(other)
    assert other.open_run(run_dir)
    other.refresh()
    x = other.plots.curves["loss"].xData
    assert len(x) == stopped and x[0] == 1 and x[-1] == stopped
    assert other.form.fields["steps"].value() == 20000  # the run's config is shown
    # memory and loss by noise level come back from the file too, and the newest preview
    assert len(other.plots.curves["memory"].xData) >= 10 and other.history.levels.counts.sum() > 0
    assert other.preview.currentWidget() is other.preview_images and other.preview_images.image.image is not None

    # ... and resume it: the earlier metrics stay, new steps follow
    other.form.fields["steps"].setValue(stopped + 60)
    with qtbot.waitSignal(other.bridge.ended, timeout=60_000) as ended:
        qtbot.mouseClick(other.continue_button, Qt.MouseButton.LeftButton)
    assert isinstance(ended.args[0], Finished) and ended.args[0].step == stopped + 60
    other.refresh()
    x = other.plots.curves["loss"].xData
    assert x[0] == 1 and x[-1] == stopped + 60
    assert any(f"from step {stopped}" in m for _, m in other.log.lines)
    assert RunDir(run_dir).status()["state"] == "finished"
    # Resume run on the finished run, steps not raised: a message saying what to raise, no job
    qtbot.mouseClick(other.continue_button, Qt.MouseButton.LeftButton)
    assert not other.bridge.running and not other.banner.isHidden()
    assert f"already at step {stopped + 60}" in other.banner.text() and "raise steps" in other.banner.text()
    assert other.continue_button.isEnabled() and RunDir(run_dir).status()["state"] == "finished"
    other.shutdown()


def test_saved_toml_loads_and_trains_with_the_cli(qtbot, panel, tmp_path):
    panel.form.load_preset("quick_toy")
    panel.form.fields["batch_size"].setValue(64)
    panel.form.network_form.editors["hidden"].setValue(16)
    path = tmp_path / "from_app.toml"
    assert panel.save_toml(path), panel.banner.text()
    cfg = load_config(path)
    assert cfg.train["batch_size"] == 64 and cfg.network["hidden"] == 16
    assert cfg.data["name"] == "8gaussians" and cfg.schedule["family"] == "linear"
    assert cfg.train["device"] == "cpu"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "studio", "train", str(path), "--out", str(tmp_path / "cli"),
                           "--steps", "20"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert RunDir(tmp_path / "cli").status()["state"] == "finished"


def test_schedule_from_the_editor_goes_into_the_config(qtbot, panel, state):
    from studio.core.schedules import make_schedule

    state.add_schedule("mine", make_schedule("custom", points=[[0, 8], [0.4, 1], [1, -9]], steps=200))
    state.use_for_training(len(state.schedules) - 1)
    sections = panel.form.sections()
    assert sections["schedule"] == {"family": "custom", "points": [[0.0, 8.0], [0.4, 1.0], [1.0, -9.0]], "steps": 200}
    assert sections["data"] == state.data_options
    panel.form.config()  # checks out
    # NCSN cannot train with a variance-preserving schedule: said before anything starts
    panel.form.method.setCurrentIndex(panel.form.method.findData("ncsn"))
    panel.form._on_method_chosen(panel.form.method.currentIndex())
    assert not panel.start()
    assert "[method]" in panel.banner.text() and "variance-exploding" in panel.banner.text()
    assert panel.mode == "idle"


def test_bad_key_and_bad_value_are_named_and_the_panel_stays_usable(qtbot, panel, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((PRESET_DIR / "quick_toy.toml").read_text().replace("seed = 0", "seed = 0\nlearning_rate = 0.1"))
    assert not panel.load_toml(bad)
    assert "learning_rate" in panel.banner.text() and "[train]" in panel.banner.text()
    panel.form.fields["lr"].setText("fast")
    assert not panel.start()
    assert "[train] lr" in panel.banner.text() and "fast" in panel.banner.text()
    assert "d33" in panel.form.fields["lr"].styleSheet()  # the editor is marked
    assert panel.mode == "idle" and panel.start_button.isEnabled()
    # still usable: a good config loads and saves
    assert panel.load_toml(PRESET_DIR / "quick_toy.toml")
    assert panel.save_toml(tmp_path / "ok.toml")


def test_nan_stop_is_logged_with_the_last_checkpoint(qtbot, panel, tmp_path):
    assert panel.load_toml(tiny_toml(tmp_path, steps=400, lr="1e12", warmup=0, ckpt=1))
    with qtbot.waitSignal(panel.bridge.ended, timeout=60_000) as ended:
        assert panel.start()
    failed = ended.args[0]
    assert failed.nan
    text = panel.log.text()
    assert "NaN stop" in text and "checkpoint" in text
    assert failed.checkpoint and Path(failed.checkpoint).name in text
    assert panel.banner.level == "error" and "NaN stop" in panel.banner.text()
    assert panel.start_button.isEnabled()


def test_closing_the_window_while_training_asks_then_saves_a_checkpoint(qtbot, state, settings, tmp_path):
    from studio.gui.app import build_window

    warm_up()
    window = build_window(state, settings=settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.panel("training")
    panel.runs_root.setText(str(tmp_path / "runs"))
    assert panel.load_toml(tiny_toml(tmp_path))
    assert panel.start()
    qtbot.waitUntil(lambda: panel.history.step >= 20, timeout=30_000)
    assert window.progress_bar.isVisible()  # status-bar progress while training

    asked = []
    panel.ask_stop_on_close = lambda: asked.append(1) or False  # "No": keep training
    assert not window.close()
    assert asked and window.isVisible() and panel.bridge.running

    panel.ask_stop_on_close = lambda: asked.append(1) or True  # "Yes": stop, save, close
    assert window.close()
    assert len(asked) == 2 and not panel.bridge.running
    run = RunDir(panel.run_dir)
    status = run.status()
    assert status["state"] == "cancelled"
    assert run.latest_checkpoint().name == f"step_{status['step']:08d}.safetensors"
    assert json.loads((run.path / "status.json").read_text())["step"] > 0


def test_options_with_allowed_values_are_lists_and_reach_the_config(qtbot, panel):
    from PySide6.QtWidgets import QComboBox

    form = panel.form
    form._set_method("ddpm", {})
    prediction = form.method_form.editors["prediction"]
    assert isinstance(prediction, QComboBox)
    assert [prediction.itemText(i) for i in range(prediction.count())] == ["eps", "x0", "v"]
    prediction.setCurrentIndex(prediction.findData("v"))
    variance = form.method_form.editors["variance"]
    variance.setCurrentIndex(variance.findData("beta"))
    section = form.sections()["method"]
    assert section["prediction"] == "v" and section["variance"] == "beta"
    assert isinstance(form.network_form.editors["embedding"], QComboBox)
    form._set_method("vdm", {"data": "uint8"})
    assert form.method_form.editors["data"].currentData() == "uint8"
    prediction = form.method_form.editors["prediction"]
    assert [prediction.itemText(i) for i in range(prediction.count())] == ["eps", "v"] and prediction.isEnabled()
    prediction.setCurrentIndex(prediction.findData("v"))
    assert form.sections()["method"]["prediction"] == "v"
    form._set_method("ncsn", {})
    assert not form.method_form.editors["prediction"].isEnabled()  # eps is the only choice


def test_loss_by_noise_level_binned_by_t_follows_the_schedule(qtbot, panel, tmp_path):
    """The same losses binned by t: with the run's schedule, bin k holds the samples whose
    log-SNR maps to t in bin k; switching the view redraws curve and heatmap."""
    assert panel.open_run(_short_run(tmp_path))
    h = panel.history
    assert h.levels.counts.sum() > 0 and h.levels.counts.sum() == h.levels_t.counts.sum()
    panel.bin_by.setCurrentIndex(panel.bin_by.findData("t"))
    x, y = panel.plots.curves["levels"].getData()
    assert len(x) >= 10 and x.min() >= 0.0 and x.max() <= 1.0
    # a linear DDPM schedule: small t (high log-SNR) is where eps is hardest to predict
    assert y[np.argmin(x)] > y[np.argmax(x)]
    rect = panel.plots.heatmap.mapRectToParent(panel.plots.heatmap.boundingRect())
    assert abs(rect.top() - 0.0) < 1e-6 and abs(rect.bottom() - 1.0) < 1e-6  # the heatmap spans t in [0, 1]
    panel.bin_by.setCurrentIndex(panel.bin_by.findData("log_snr"))
    x, _ = panel.plots.curves["levels"].getData()
    assert x.min() < 0.0  # back to log-SNR bins


def _short_run(tmp_path):
    from studio.engine.jobs import train_job as job

    run = tmp_path / "short"
    for _ in job(tiny_toml(tmp_path, steps=300), run):
        pass
    return run


def test_a_learned_schedule_is_drawn_as_it_trains(qtbot, panel, tmp_path):
    toml = tiny_toml(tmp_path, steps=100_000, lr="1e-2", method={"name": "vdm"},
                     schedule={"family": "vdm_learned", "steps": None, "beta_start": None, "beta_end": None})
    assert panel.load_toml(toml), panel.banner.text()
    readings = []
    panel.bridge.events.connect(lambda batch: readings.extend(
        e.schedule_log_snr for e in batch if isinstance(e, Progress) and e.schedule_log_snr is not None))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(readings) >= 3, timeout=30_000)  # about one a second
    start_x, start_y = panel.plots.schedule_start.getData()
    now_x, now_y = panel.plots.schedule_now.getData()
    panel.bridge.stop_and_wait(30)
    np.testing.assert_allclose(now_y, np.clip(readings[-1], -30, 30))  # the newest reading drawn
    assert not np.allclose(readings[0], readings[-1], atol=1e-4)  # it moved while training
    assert len(start_y) and not np.allclose(np.interp(now_x, start_x, start_y), now_y, atol=1e-4)


def test_a_preset_says_plainly_that_it_overrides_the_data_panel_and_the_schedule(qtbot, panel, state):
    form = panel.form
    state.use_for_training(0)
    assert "overrides" not in form.data_label.text() and "overrides" not in form.schedule_label.text()
    form.load_preset("quick_toy")
    assert "preset 'quick_toy'" in form.data_label.text() and "overrides the Data panel" in form.data_label.text()
    assert "moons" in form.data_label.text()  # what the Data panel holds, named beside it
    assert "overrides the schedule chosen with 'Use for training'" in form.schedule_label.text()
    assert form.config().data["name"] == "8gaussians"  # Start trains on what the form shows
    # picking data and a schedule in the app again: the form trains on those, and says nothing more
    state.set_dataset(state.dataset, {"source": "toy", "name": "moons", "n": 300})
    state.use_for_training(0)
    assert "overrides" not in form.data_label.text() and "overrides" not in form.schedule_label.text()
    assert form.config().data["name"] == "moons" and form.config().schedule["family"] == "linear"

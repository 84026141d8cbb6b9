"""Users' journeys through the real MainWindow, clicking the real buttons: the hand-offs
between panels (train -> sample -> branch -> export; a CLI run followed, killed and
resumed; bad input at Start; closing mid-training and reopening; a job that raises).
File dialogs and the close question are answered by patching QFileDialog / QMessageBox,
as a user would answer them; nothing else reaches past the GUI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.engine.events import Failed, Finished
from studio.engine.presets import preset_path
from studio.engine.runs import RunDir
from studio.gui.app import build_window, default_state

from ..session.failing import failing_network

LEFT = Qt.MouseButton.LeftButton


def open_window(qtbot, settings, tmp_path, run_dir=None):
    window = build_window(default_state(run_dir), settings=settings)
    qtbot.addWidget(window)
    window.show()
    training = window.panel("training")
    training.runs_root.setText(str(tmp_path / "runs"))
    training.session.watch.interval_s = 0.1
    # a test that fails mid-run must not hang on the close question at teardown; the
    # closing journey answers the real QMessageBox itself
    training.ask_stop_on_close = lambda: True
    return window, training, window.panel("viewer")


def choose(combo, text=None, data=None):
    """Pick an item the way a user does (the combo's activated signal fires)."""
    i = combo.findText(text) if text is not None else combo.findData(data)
    assert i >= 0, (text, data)
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def set_train(training, **values):
    for key, value in values.items():
        w = training.form.fields[key]
        w.setValue(value) if hasattr(w, "setValue") else w.setText(str(value))


def answer_save_dialog(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def ended(qtbot, bridge, timeout=120_000):
    if not bridge.running:
        return bridge.last_event
    with qtbot.waitSignal(bridge.ended, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def test_train_then_sample_branch_and_export_with_no_dialog(qtbot, settings, tmp_path, monkeypatch):
    window, training, viewer = open_window(qtbot, settings, tmp_path)
    choose(training.form.preset, "quick_toy")
    set_train(training, steps=400, checkpoint_every=100, preview_every=0)
    qtbot.mouseClick(training.start_button, LEFT)
    assert training.mode == "training" and training.banner.level != "error"
    # the viewer offers that run's checkpoint by itself: no File > Open run
    qtbot.waitUntil(lambda: viewer.run is not None and viewer.form.checkpoint.count() > 0, timeout=60_000)
    assert viewer.run.path == training.run_dir and viewer.banner.level != "error"
    viewer.form.fields.steps.setValue(20)
    viewer.form.n.setValue(16)
    qtbot.mouseClick(viewer.form.run_button, LEFT)
    qtbot.waitUntil(lambda: viewer.idle and viewer.data is not None and viewer.data.complete, timeout=60_000)
    assert viewer.data.count == 20 and viewer.banner.level != "error"
    viewer.timeline.slider.setValue(10)  # scrub to a middle step
    assert viewer.timeline.step == 10
    with qtbot.waitSignal(viewer.branch_bridge.ended, timeout=60_000):
        qtbot.mouseClick(viewer.branch_form.branch_button, LEFT)
    assert viewer.branch is not None and viewer.branch.complete and viewer.branch.count == 10
    for kind, name in (("grid_png", "grid.png"), ("gif", "walk.gif")):
        choose(viewer.export.kind, data=kind)
        answer_save_dialog(monkeypatch, tmp_path / name)
        qtbot.mouseClick(viewer.export.button, LEFT)
        with Image.open(tmp_path / name) as im:
            im.load()
            assert im.size[0] > 64 and im.size[1] > 64
            frames = getattr(im, "n_frames", 1)
        assert frames == (1 if kind == "grid_png" else 21)  # every one of the 20 steps and the samples
    last = ended(qtbot, training.bridge)
    assert isinstance(last, Finished) and last.step == 400
    assert viewer.form.checkpoint.itemText(0) == "latest (step 400)"  # each one was offered


@pytest.mark.slow
def test_a_cli_run_followed_sampled_killed_and_resumed_here(qtbot, settings, tmp_path, monkeypatch):
    run_dir = tmp_path / "cli_run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(preset_path("quick_toy")), "--out", str(run_dir),
                             "--steps", "1000000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        window, training, viewer = open_window(qtbot, settings, tmp_path)
        qtbot.waitUntil(lambda: (run_dir / "status.json").is_file(), timeout=60_000)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(run_dir)))
        next(a for a in window.findChildren(QAction) if a.text() == "Open &run…").trigger()  # File > Open run
        assert training.mode == "following" and viewer.run is not None and viewer.run.path == run_dir
        qtbot.waitUntil(lambda: "following" in training.status_label.text(), timeout=10_000)
        assert not training.continue_button.isEnabled()  # another live process writes it
        # its first checkpoint is offered to the viewer as the follower sees the file
        qtbot.waitUntil(lambda: viewer.form.checkpoint.count() > 0, timeout=120_000)
        viewer.form.fields.steps.setValue(10)
        viewer.form.n.setValue(8)
        qtbot.mouseClick(viewer.form.run_button, LEFT)
        qtbot.waitUntil(lambda: viewer.idle and viewer.data is not None and viewer.data.complete, timeout=60_000)
        assert proc.poll() is None  # sampled while the CLI still trains
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        # within seconds the app says it stopped, and offers Resume
        qtbot.waitUntil(lambda: "stopped" in training.status_label.text(), timeout=10_000)
        qtbot.waitUntil(training.continue_button.isEnabled, timeout=5_000)
        step = int(RunDir(run_dir).latest_checkpoint().stem.split("_")[1])
        set_train(training, steps=step + 100)
        qtbot.mouseClick(training.continue_button, LEFT)
        last = ended(qtbot, training.bridge)
        assert isinstance(last, Finished) and last.step == step + 100, getattr(last, "message", last)
        assert RunDir(run_dir).status()["state"] == "finished"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_values_at_start_are_named_and_nothing_is_written(qtbot, settings, tmp_path, monkeypatch):
    window, training, viewer = open_window(qtbot, settings, tmp_path)
    runs = tmp_path / "runs"
    text = preset_path("quick_toy").read_text()
    for name, toml, words in (("unknown.toml", text.replace("[train]\n", "[train]\ncolour = 3\n"), "[train] colour"),
                              ("beta.toml", text.replace("beta_end = 0.2", "beta_end = 1.0"), "beta_end")):
        path = tmp_path / name
        path.write_text(toml)
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, p=path, **k: (str(p), "")))
        qtbot.mouseClick(training.load_button, LEFT)
        if training.banner.level != "error":  # loaded: the value is checked at Start
            qtbot.mouseClick(training.start_button, LEFT)
        assert training.banner.level == "error" and words in training.banner.text(), training.banner.text()
        assert training.mode == "idle" and not training.bridge.running and not runs.exists()
    choose(training.form.preset, "quick_toy")
    set_train(training, lr=-0.001)
    qtbot.mouseClick(training.start_button, LEFT)
    assert training.banner.level == "error" and "[train] lr" in training.banner.text()
    assert not runs.exists() and training.start_button.isEnabled()
    # and the app keeps working
    set_train(training, lr=0.002, steps=60, checkpoint_every=30, preview_every=0)
    qtbot.mouseClick(training.start_button, LEFT)
    last = ended(qtbot, training.bridge)
    assert isinstance(last, Finished) and last.step == 60 and training.banner.level != "error"


@pytest.mark.slow
def test_closing_mid_training_saves_and_a_reopened_app_resumes(qtbot, settings, tmp_path, monkeypatch):
    window, training, viewer = open_window(qtbot, settings, tmp_path)
    choose(training.form.preset, "quick_toy")
    set_train(training, steps=100_000, checkpoint_every=100_000, preview_every=0)
    qtbot.mouseClick(training.start_button, LEFT)
    qtbot.waitUntil(lambda: training.history.step >= 50, timeout=60_000)
    run_dir = training.run_dir
    del training.ask_stop_on_close  # the real question, answered below
    asked = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes))
    window.close()
    assert asked and not window.isVisible() and not training.bridge.running
    status = RunDir(run_dir).status()
    assert status["state"] == "cancelled" and status["checkpoint"] == RunDir(run_dir).latest_checkpoint().name
    step = status["step"]
    # the app opened again on that run (diffusion-studio gui RUN_DIR) shows it and resumes it
    window2, training2, viewer2 = open_window(qtbot, settings, tmp_path, run_dir=run_dir)
    assert training2.run_dir == run_dir and training2.mode == "following" and "cancelled" in training2.status_label.text()
    assert viewer2.run is not None and viewer2.form.checkpoint.count() > 0
    assert training2.continue_button.isEnabled()
    set_train(training2, steps=step + 50)
    qtbot.mouseClick(training2.continue_button, LEFT)
    last = ended(qtbot, training2.bridge)
    assert isinstance(last, Finished) and last.step == step + 50 and not last.result.get("cancelled")


def test_a_job_that_raises_is_failed_and_resumes_in_the_same_app(qtbot, settings, tmp_path):
    with failing_network(fail_at=150, message="the network fell over") as plan:
        window, training, viewer = open_window(qtbot, settings, tmp_path)
        choose(training.form.network, data="failing_mlp")
        set_train(training, steps=300, batch_size=128, checkpoint_every=100, preview_every=0, log_every=10)
        qtbot.mouseClick(training.start_button, LEFT)
        last = ended(qtbot, training.bridge)
        assert isinstance(last, Failed) and "the network fell over" in last.message
        assert training.banner.level == "error" and "the network fell over" in training.banner.text()
        status = RunDir(training.run_dir).status()
        assert status["state"] == "failed" and "the network fell over" in status["message"]
        assert training.continue_button.isEnabled()
        qtbot.mouseClick(training.continue_button, LEFT)
        last = ended(qtbot, training.bridge)
        assert isinstance(last, Finished) and last.step == 300 and plan["calls"] > 150
        assert RunDir(training.run_dir).status()["state"] == "finished"

"""Following a run that another process writes: `diffusion-studio train` in a
subprocess, the monitor's plots growing as it goes, controls read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from studio.engine.config import parse_config
from studio.engine.runs import RunDir
from studio.gui.panels.training import TrainingPanel

from .test_training_panel import tiny_toml


@pytest.mark.slow
def test_follow_a_cli_run_live(qtbot, state, tmp_path):
    cfg = tiny_toml(tmp_path, steps=1500, ckpt=500)
    run_dir = tmp_path / "cli_run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(cfg), "--out", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        panel = TrainingPanel(state)
        qtbot.addWidget(panel)
        panel.session.watch.interval_s = 0.1
        qtbot.waitUntil(lambda: (run_dir / "config.toml").is_file() and (run_dir / "status.json").is_file(), timeout=60_000)
        state.set_run_dir(run_dir)  # File > Open run: the monitor follows it
        assert panel.mode == "following" and panel.session.watch.active
        # another process writes it: read-only, nothing to pause or stop here
        if proc.poll() is None and RunDir(run_dir).status().get("state") == "running":
            assert not panel.pause_button.isEnabled() and not panel.stop_button.isEnabled()
            assert not panel.continue_button.isEnabled()
            assert "following" in panel.status_label.text()
        seen = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            qtbot.wait(100)
            panel.refresh()
            seen.append(len(panel.plots.curves["loss"].xData if panel.history.series["loss"].n else []))
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
        qtbot.waitUntil(lambda: panel.history.step == 1500, timeout=10_000)
        panel.refresh()
    finally:
        if proc.poll() is None:
            proc.kill()
    grown = sorted(set(n for n in seen if 0 < n < 1500))
    assert len(grown) >= 2, seen  # the plots grew while the other process trained
    x, y = (panel.plots.curves["loss"].xData, panel.plots.curves["loss"].yData)
    assert len(x) == 1500 and np.all(np.isfinite(y))
    assert len(panel.plots.curves["samples_per_s"].xData) > 10
    # loss by noise level comes from the metrics file too: curve and heatmap filled
    assert len(panel.plots.curves["levels"].xData) >= 10
    assert np.isfinite(panel.history.levels.image()).sum() > 10
    qtbot.waitUntil(lambda: panel.continue_button.isEnabled(), timeout=10_000)  # it ended: resumable here
    assert "finished" in panel.status_label.text()
    assert panel.preview.currentWidget() is panel.preview_images  # the newest preview PNG
    assert panel.preview_images.image.image is not None


def test_open_a_folder_that_is_not_a_run(qtbot, state, tmp_path):
    panel = TrainingPanel(state)
    qtbot.addWidget(panel)
    assert not panel.open_run(tmp_path)
    assert str(tmp_path) in panel.banner.text() and "config.toml" in panel.banner.text()
    assert panel.mode == "idle" and panel.start_button.isEnabled()


def test_learned_schedule_is_read_from_a_checkpoint(tmp_path):
    import torch

    from studio.core.registry import METHODS
    from studio.core.schedules import make_schedule
    from studio.engine.checkpoint import save_checkpoint

    config = {"method": {"name": "vdm"}, "schedule": {"family": "vdm_learned", "gamma_min": -10.0, "gamma_max": 8.0}}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(parse_config({"data": {"source": "toy", "name": "moons"}, **config}).to_toml())
    method = METHODS.get("vdm")(make_schedule("vdm_learned", gamma_min=-10.0, gamma_max=8.0))
    with torch.no_grad():
        method.schedule.l1.bias.add_(2.0)  # gamma + 2 everywhere: log-SNR - 2
    path = save_checkpoint(tmp_path / "step_00000001.safetensors", {"method": method.state_dict(), "step": 1})
    t, start = RunDir(run).schedule_curve()  # the run says its schedule, at a checkpoint too
    _, now = RunDir(run).schedule_curve(path)
    np.testing.assert_allclose(now, start - 2.0, atol=1e-4)
    assert t[0] == 0.0 and t[-1] == 1.0

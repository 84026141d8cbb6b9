"""Start pressed while the app's background optimizer warm-up still runs: the panel
waits for it off the GUI thread (train_job builds its optimizer on the calling thread,
which would block on the warm-up's import locks), then starts the run by itself."""

from __future__ import annotations

import studio.gui.panels.training.panel as panel_module
from tests.gui.test_training_panel import panel, tiny_toml  # noqa: F401  (the fixture)


def test_start_waits_for_the_warm_up_then_runs(qtbot, panel, tmp_path, monkeypatch):  # noqa: F811
    pending = [True]
    monkeypatch.setattr(panel_module, "warm_up_pending", lambda: pending[0])
    assert panel.load_toml(tiny_toml(tmp_path, steps=40, ckpt=20))
    assert panel.start()
    assert not panel.bridge.running and not panel.start_button.isEnabled()
    assert "warming up" in panel.status_label.text()
    qtbot.wait(3 * panel_module.WARM_UP_POLL_MS)
    assert not panel.bridge.running  # still waiting, the window alive
    pending[0] = False
    qtbot.waitUntil(lambda: panel.bridge.running or panel.run_dir is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not panel.bridge.running, timeout=120_000)
    assert (panel.run_dir / "checkpoints").is_dir()

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

def test_start_while_the_app_loads_starts_the_warm_up_first(qtbot, tmp_path, monkeypatch):
    """The app warms the optimizer up once every panel is built; a Start pressed before
    that (Training built, other panels still loading) starts the warm-up itself and
    waits for it, so the first optimizer is never built on the GUI thread."""
    import studio.engine.trainer as trainer
    from PySide6.QtCore import QSettings

    from studio.gui.app import build_window, default_state

    monkeypatch.setattr(trainer, "_warm_up_thread", None)  # as in a fresh app: not warmed up yet
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = build_window(default_state(), settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    pressed = []

    def press(key):
        if key == "training":  # the panels after it are still to come
            training = w.panel("training")
            assert w.loading() and trainer._warm_up_thread is None
            assert training.load_toml(tiny_toml(tmp_path, steps=40, ckpt=20))
            pressed.append(training.start())
            assert trainer._warm_up_thread is not None  # started by Start, off the GUI thread

    w.panel_built.connect(press)
    with qtbot.waitSignal(w.all_panels_built, timeout=60_000):
        w.build_panels_in_turns()
    assert pressed == [True]
    training = w.panel("training")
    qtbot.waitUntil(lambda: training.run_dir is not None and not training.bridge.running, timeout=120_000)
    assert (training.run_dir / "checkpoints").is_dir()
    w.close()

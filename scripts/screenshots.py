"""Save PNG screenshots of the app's window and of each panel, to look at.

    python scripts/screenshots.py [OUT_DIR]        (default: shots/)

Without a display it re-runs itself under ``xvfb-run`` (a real X server) when that is
installed, else it falls back to Qt's offscreen platform. Settings go to a temporary
file, never to the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCREEN = "1600x1000x24"


def reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") or os.environ.get("_STUDIO_SHOTS_XVFB"):
        return
    if shutil.which("xvfb-run"):
        env = {**os.environ, "_STUDIO_SHOTS_XVFB": "1"}
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", sys.executable, *sys.argv]
        sys.exit(subprocess.call(cmd, env=env))
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


def settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "shots")
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from studio.core.schedules import make_schedule
    from studio.gui.app import build_window, default_state

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "studio.ini"), QSettings.Format.IniFormat)
    state = default_state()
    window = build_window(state, settings=settings)
    window.resize(1500, 920)
    window.show()
    settle(app, 1.0)
    saved = []

    def shot(widget, name: str) -> None:
        settle(app)
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    editor, data = window.panel("schedule"), window.panel("data")
    shot(window, "window_default.png")
    shot(data, "panel_data_points.png")

    # several schedules overlaid, a custom one selected (control points shown)
    for family in ("cosine", "vdm_fixed", "custom"):
        state.add_schedule(family, make_schedule(family))
    editor.select(len(state.schedules) - 1)
    editor.preview.set_t(0.35)
    shot(editor, "panel_schedule_overlay_custom.png")

    # a variance-exploding schedule: sigma gets a log axis
    state.add_schedule("geometric", make_schedule("geometric"))
    editor.select(len(state.schedules) - 1)
    shot(editor, "panel_schedule_ve.png")

    # a bad parameter shown inline
    editor.select(0)
    editor.form.editors["beta_end"].setText("1.5")
    editor.apply_parameters()
    shot(editor, "panel_schedule_bad_value.png")
    editor.form.editors["beta_end"].setText("0.02")
    editor.apply_parameters()

    # images: digits at 16 x 16
    data.select_source("digits")
    data.resolution.setCurrentIndex(data.resolution.findData(16))
    data.load()
    deadline = time.monotonic() + 20
    while data.loading and time.monotonic() < deadline:
        settle(app, 0.1)
    shot(data, "panel_data_images.png")
    shot(window, "window_images.png")

    shoot_viewer(app, window, state, shot, Path(tempfile.mkdtemp(prefix="studio-shots-runs-")))

    # training monitor mid-training: a short real run on the toy set
    training = window.panel("training")
    training.runs_root.setText(tempfile.mkdtemp(prefix="shots_runs_"))
    training.form.load_preset("quick_toy")
    training.form.fields["steps"].setValue(3000)
    training.form.fields["preview_every"].setValue(300)
    window.raise_panel("training")
    training.start()
    deadline = time.monotonic() + 60
    while training.history.step < 900 and time.monotonic() < deadline:
        settle(app, 0.1)
    settle(app, 0.5)  # a full cycle of the round-robin plot updates
    shot(training, "panel_training_running.png")
    shot(window, "window_training.png")
    training.bridge.stop_and_wait(60)

    training.ask_stop_on_close = lambda: True
    window.close()
    for path in saved:
        print(path)
    return 0


def shoot_viewer(app, window, state, shot, runs: Path) -> None:
    """The reverse-process viewer mid-scrub on a tiny digits run and on a 2-D run, with
    a branch compared; the runs are trained here with the quick presets (~20 s)."""
    from studio.engine.jobs import train_job

    configs = Path(__file__).resolve().parent.parent / "resources" / "configs"
    viewer = window.panel("viewer")
    window.raise_panel("viewer")
    for name, config, train_steps, steps, n in (("digits", "quick_digits.toml", 300, 100, 64), ("toy", "quick_toy.toml", 800, 100, 400)):
        for _ in train_job(configs / config, runs / name, steps=train_steps):
            pass
        state.set_run_dir(runs / name)
        viewer.form.fields.steps.setValue(steps)
        viewer.form.n.setValue(n)
        viewer.start_sampling()
        deadline = time.monotonic() + 120
        while not viewer.idle and time.monotonic() < deadline:
            settle(app, 0.1)
        viewer.timeline.set_step(steps * 2 // 3)
        shot(window, f"window_viewer_{name}.png")
        viewer.start_branch(stepping=False)
        deadline = time.monotonic() + 120
        while viewer.branch_bridge.running and time.monotonic() < deadline:
            settle(app, 0.1)
        viewer.timeline.set_step(steps * 3 // 4)
        shot(viewer, f"panel_viewer_{name}_branch.png")


if __name__ == "__main__":
    reexec_under_xvfb()
    sys.exit(main(sys.argv[1:]))

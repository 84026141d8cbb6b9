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
    from studio.gui.app import open_app

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "studio.ini"), QSettings.Format.IniFormat)
    window = open_app(settings=settings)  # the launch path: the window first, torch and the panels after
    saved = []

    def shot(widget, name: str, wait: float = 0.4) -> None:
        settle(app, wait)
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    ready = []
    window.all_panels_built.connect(lambda: ready.append(True))
    shot(window, "window_launch.png", 0.0)  # as first painted: docks with their Loading lines
    deadline = time.monotonic() + 120
    while not ready and time.monotonic() < deadline:
        settle(app, 0.05)
    from studio.core.schedules import make_schedule

    state = window.state
    editor, data = window.panel("schedule"), window.panel("data")
    shot(window, "window_default.png", 1.0)
    shot(data, "panel_data_points.png")

    # several schedules overlaid, a custom one selected (control points shown)
    for family in ("cosine", "vdm_fixed", "custom"):
        state.add_schedule(family, make_schedule(family))
    editor.select(len(state.schedules) - 1)
    editor.preview.set_t(0.35)
    shot(editor, "panel_schedule_overlay_custom.png")
    editor.views.setCurrentWidget(editor.lambda_view)  # the same schedules on the log-SNR axis
    shot(editor, "panel_schedule_log_snr.png")
    editor.views.setCurrentIndex(0)

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

    shoot_journey(app, window, shot, Path(tempfile.mkdtemp(prefix="studio-shots-runs-")))

    training = window.panel("training")
    training.ask_stop_on_close = lambda: True
    window.close()
    for path in saved:
        print(path)
    return 0


def wait(app, done, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        settle(app, 0.1)


def shoot_journey(app, window, shot, runs: Path) -> None:
    """A user's path, through the buttons themselves: train a quick preset in the Training
    panel, the viewer picks the run and its checkpoint up by itself (no Open run), Run,
    scrub, Branch; the monitor mid-training on the way. Digits first, then the 2-D set."""
    training, viewer = window.panel("training"), window.panel("viewer")
    training.runs_root.setText(str(runs))
    for preset, train_steps, steps, n in (("quick_digits", 300, 100, 64), ("quick_toy", 1500, 100, 400)):
        training.form.load_preset(preset)
        training.form.fields["steps"].setValue(train_steps)
        training.form.fields["checkpoint_every"].setValue(train_steps // 3)
        training.form.fields["preview_every"].setValue(train_steps // 5)
        window.raise_panel("training")
        training.start_button.click()
        if preset == "quick_toy":  # the monitor mid-training
            wait(app, lambda: training.history.step >= 900, 120)
            settle(app, 0.5)  # a full cycle of the round-robin plot updates
            shot(training, "panel_training_running.png")
            shot(window, "window_training.png")
        wait(app, lambda: not training.bridge.running, 300)
        window.raise_panel("viewer")
        wait(app, lambda: viewer.form.checkpoint.count() > 0, 30)  # offered with no dialog
        viewer.form.fields.steps.setValue(steps)
        viewer.form.n.setValue(n)
        viewer.form.run_button.click()
        wait(app, lambda: viewer.idle, 120)
        viewer.timeline.set_step(steps * 2 // 3)
        name = preset.split("_")[1]
        shot(window, f"window_viewer_{name}.png")
        viewer.branch_form.branch_button.click()
        wait(app, lambda: not viewer.branch_bridge.running, 120)
        viewer.timeline.set_step(steps * 3 // 4)
        shot(viewer, f"panel_viewer_{name}_branch.png")
        samplers = window.panel("samplers")  # quality against NFE for the same checkpoint
        window.raise_panel("samplers")
        samplers.set_ticked(["ancestral", "ddim", "heun", "dpmpp_2m"])
        samplers.budgets.setText("5,10,20,50")
        samplers.n.setValue(n)
        samplers.run_button.click()
        wait(app, lambda: not samplers.bridge.running, 300)
        samplers.show_cell(len(samplers.session.cells) // 2)
        shot(samplers, f"panel_samplers_{name}.png")


if __name__ == "__main__":
    reexec_under_xvfb()
    sys.exit(main(sys.argv[1:]))

"""The real app in a process of its own, for tests that kill it (tests/gui/test_app_kill_loop.py).

It builds the main window as ``diffusion-studio gui`` does (offscreen) and presses the
Training panel's buttons as a user does:

    python -m tests.gui.app_driver start CONFIG RUNS_ROOT   # Load TOML, then Start
    python -m tests.gui.app_driver resume RUN_DIR          # the app reopened on the run, then Resume run

It exits 0 when the training job finishes, 1 when it fails or stops, 3 when a button
the user needs is disabled, 4 when its click started no job (the banner's message on
stderr: a run already at its last step, say).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str]) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.engine.events import Finished
    from studio.engine.trainer import warm_up_in_background
    from studio.gui.app import build_window, default_state

    app = QApplication([sys.argv[0]])
    mode, target = argv[0], argv[1]
    settings = QSettings(os.path.join(os.environ["XDG_CONFIG_HOME"], "studio.ini"), QSettings.Format.IniFormat)
    window = build_window(default_state(target if mode == "resume" else None), settings=settings)
    window.show()
    QTimer.singleShot(0, warm_up_in_background)  # as the app does once its window is up
    panel = window.panel("training")
    if mode == "start":
        panel.runs_root.setText(argv[2])
        if not panel.load_toml(target):
            print(panel.banner.text(), file=sys.stderr)
            return 1
    button = panel.start_button if mode == "start" else panel.continue_button
    if not button.isEnabled():
        print(f"{button.text()!r} is disabled: {panel.status_label.text()}", file=sys.stderr)
        return 3
    codes = []

    def ended(last) -> None:
        codes.append(0 if isinstance(last, Finished) and not last.result.get("cancelled") else 1)
        app.quit()

    panel.bridge.ended.connect(ended)
    button.click()
    if not panel.bridge.running:
        print(panel.banner.text(), file=sys.stderr)
        return 4
    app.exec()
    return codes[0] if codes else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

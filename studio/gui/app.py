"""Entry point of the desktop app: ``diffusion-studio`` with no subcommand, or
``diffusion-studio gui [RUN_DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: torch comes in after the splash is on screen
    from studio.session import AppState

DEFAULT_DATA = {"source": "toy", "name": "swiss_roll", "n": 4000, "seed": 0}


def default_state(run_dir: str | Path | None = None) -> AppState:
    """What a first-time user sees: a toy 2-D set and the linear DDPM schedule, the
    schedule already chosen for training."""
    from studio.core.data import load_dataset, toy_names
    from studio.core.data import toy as _toy  # noqa: F401 - registers the toy sets
    from studio.core.schedules import make_schedule
    from studio.session import AppState

    state = AppState()
    options = dict(DEFAULT_DATA)
    if options["name"] not in toy_names():  # keep working if the set list changes
        options["name"] = toy_names()[0]
    source = options.pop("source")
    state.set_dataset(load_dataset(source, **options), {"source": source, **options})
    state.add_schedule("linear", make_schedule("linear"))
    state.use_for_training(0)
    if run_dir is not None:
        state.set_run_dir(run_dir)
    return state


def build_window(state: AppState, settings=None):
    """The main window with every panel of ``studio.gui.panels.PANELS``."""
    from studio.gui.main_window import MainWindow
    from studio.gui.panels import PANELS

    window = MainWindow(state, settings=settings)
    window.load_plugins(window.settings.value("plugins/folder", "") or None)  # before panels list names
    for spec in PANELS:
        widget = spec.factory(state, window) if spec.needs_window else spec.factory(state)
        window.add_panel(spec.key, spec.title, widget, area=spec.area, tabify_with=spec.tabify_with)
    if not window.restore_layout():  # first start: the default places and sizes
        window.reset_layout()
    return window


def show_splash(app, icon_path):
    """A small window with the app's icon and what is loading, painted at once: importing
    torch alone takes seconds on a small machine, and a launch that shows nothing for that
    long looks like one that failed."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QSplashScreen

    pixmap = QPixmap(str(icon_path))
    if not pixmap.isNull():
        pixmap = pixmap.scaled(256, 256, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    splash = QSplashScreen(pixmap)
    splash.showMessage("Loading Diffusion Studio…", Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter,
                       Qt.GlobalColor.white)  # short and light: it sits on the icon's dark ground
    splash.show()
    app.processEvents()  # paint it now, before the long imports
    return splash


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diffusion-studio gui", description="Open the Diffusion Studio app.")
    parser.add_argument("run_dir", nargs="?", help="a run directory to open in the viewer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from studio import preflight

    if preflight.report():  # before Qt can abort with its own message
        return 2
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Diffusion Studio")
    app.setOrganizationName("DiffusionStudio")
    from PySide6.QtGui import QIcon

    from studio.engine.presets import APP_ICON

    app.setWindowIcon(QIcon(str(APP_ICON)))  # every window of the app, the main one too
    splash = show_splash(app, APP_ICON)  # on screen before torch and the panels load (~5 s on 2 cores)
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir is not None and not run_dir.is_dir():
        print(f"diffusion-studio: run directory not found: {run_dir}", file=sys.stderr)
        run_dir = None
    window = build_window(default_state(run_dir))
    window.show()
    splash.finish(window)
    from PySide6.QtCore import QTimer

    from studio.engine.trainer import warm_up_in_background

    QTimer.singleShot(0, warm_up_in_background)  # once the window is on screen (PITFALLS: first optimizer)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the desktop app: ``diffusion-studio`` with no subcommand, or
``diffusion-studio gui [RUN_DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: torch comes in after the main window is on screen
    from studio.session import AppState

DEFAULT_DATA = {"source": "toy", "name": "swiss_roll", "n": 4000, "seed": 0}
# what the panels need: torch, the session layer, the engine (~5 s on 2 cores, most of it
# torch), then pyqtgraph and the panels' modules (~2 s; they create no QObject at import:
# checked, none is left owned by the thread). The app imports them on a thread while the
# window paints, and builds the widgets on the GUI thread.
BACKGROUND_IMPORTS = ("torch", "studio.core.data.toy", "studio.core.schedules", "studio.session.training",
                      "studio.session.sampling", "studio.session.compare", "studio.session.runs", "studio.engine.trainer",
                      "pyqtgraph")


def default_state(run_dir: str | Path | None = None, state: AppState | None = None) -> AppState:
    """What a first-time user sees: a toy 2-D set and the linear DDPM schedule, the
    schedule already chosen for training (put in ``state`` when given)."""
    from studio.core.data import load_dataset, toy_names
    from studio.core.data import toy as _toy  # noqa: F401 - registers the toy sets
    from studio.core.schedules import make_schedule
    from studio.session import AppState

    state = AppState() if state is None else state
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


def build_window(state: AppState, settings=None, prepare: bool = True):
    """The main window with a dock for every panel of ``studio.gui.panels.PANELS``, in
    its saved (or default) place; each panel is built when first needed
    (``window.panel(key)``, its dock shown while ``build_panels_in_turns`` runs).
    ``prepare``: also show the device and load the plugins now (torch is imported); the
    app does that later, after the window is on screen (``open_app``)."""
    from studio.gui.main_window import MainWindow
    from studio.gui.panels import PANELS

    window = MainWindow(state, settings=settings)
    for spec in PANELS:
        window.add_panel(spec.key, spec.title, area=spec.area, tabify_with=spec.tabify_with,
                         factory=lambda spec=spec: spec.build(state, window))
    if not window.restore_layout():  # first start: the default places and sizes
        window.reset_layout()
    if prepare:
        prepare_window(window)
    return window


def prepare_window(window) -> None:
    """What needs torch, before any panel: the device in the status bar, the plugins
    (panels list their names)."""
    window.show_device()
    window.load_plugins(window.settings.value("plugins/folder", "") or None)


def import_in_background(modules, done) -> threading.Thread:
    """Import ``modules`` on a thread and call ``done(error_text_or_None)`` on the GUI
    thread. Python imports hold the import lock per module, so a GUI-thread import of the
    same module waits for this one instead of running twice; the GIL is shared, so the
    window repaints between two bytecodes (torch's C init holds it for up to ~0.7 s on a
    loaded 2-core machine)."""
    import importlib
    import traceback

    from PySide6.QtCore import QObject, Signal

    class Relay(QObject):  # lives on the GUI thread: the emit from the worker is queued to it
        finished = Signal(object)

    relay = Relay()
    relay.finished.connect(done)

    def work() -> None:
        error = None
        try:
            for name in modules:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - reported on the GUI thread, where the import is retried
            error = traceback.format_exc()
        relay.finished.emit(error)

    thread = threading.Thread(target=work, name="background imports", daemon=True)
    thread.relay = relay  # kept alive until the thread ends
    thread.start()
    return thread


def open_app(run_dir: Path | None = None, settings=None):
    """The launch: the main window on screen first (menus, status bar, every dock in its
    place with a "Loading" line), torch and the session layer imported on a thread
    meanwhile, then the default state, the plugins and the panels one per turn of the
    event loop, visible docks first; then the optimizer warm-up, off the GUI thread (a
    Start pressed before that starts it and waits for it: never built on the GUI thread).
    Returns the window (``all_panels_built`` fires when the last panel is in)."""
    from PySide6.QtWidgets import QApplication

    from studio.session import AppState

    state = AppState()  # empty until torch is in; no panel reads it before that
    window = build_window(state, settings=settings, prepare=False)
    window.show()
    window.show_progress("Loading torch and the session layer…", None)
    QApplication.processEvents()  # paint it now

    def imported(error: str | None) -> None:
        if error is not None:  # said, then imported again here: it raises where it is seen
            print(error, file=sys.stderr)
            window.show_progress("cannot load: " + error.strip().splitlines()[-1])
        default_state(run_dir, state=state)
        prepare_window(window)
        window.clear_progress()
        window.build_panels_in_turns()

    def warm_up() -> None:
        # PITFALLS: the first optimizer imports torch._dynamo (~2 s, holding the GIL). After
        # the panels: beside their builds it made them 1.3-1.5x slower, and before them (on
        # the loading thread) it held the first panel back to ~8 s (both measured). A Start
        # pressed before this starts it itself (TrainingPanel.start).
        from studio.engine.trainer import warm_up_in_background

        warm_up_in_background()

    window.all_panels_built.connect(warm_up)
    from studio.gui.panels import PANELS

    panel_modules = tuple(spec.module for spec in PANELS)
    window.loader = import_in_background(BACKGROUND_IMPORTS + panel_modules, imported)
    return window


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
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir is not None and not run_dir.is_dir():
        print(f"diffusion-studio: run directory not found: {run_dir}", file=sys.stderr)
        run_dir = None
    window = open_app(run_dir)  # noqa: F841 - kept alive while the app runs
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

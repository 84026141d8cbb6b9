"""The main window: dock panels around the app state, menus, status bar, remembered layout.

Adding a panel (what the training monitor and the reverse-process viewer do)::

    class TrainingPanel(QWidget):
        def __init__(self, state: AppState, window: MainWindow | None = None): ...
            # read state, subscribe to its events (state.training_schedule_changed ...)
            # report job progress with window.show_progress("training", 0.42)

    window.add_panel("training", "Training", TrainingPanel(state, window), area="right",
                     tabify_with="schedule")

or, for panels the app always shows, append a ``PanelSpec`` to ``studio.gui.panels.PANELS``
and ``studio.gui.app.build_window`` adds it, then calls ``restore_layout()`` (a panel
added after that still gets its saved place through ``restoreDockWidget``). ``key`` names the dock (its objectName):
QSettings restores its place and visibility, and View gets a toggle for it. A panel may
also define ``export_plots(folder) -> list[Path]`` (File > Export plots calls it) and
``open_data_dialog()`` (File > Open data) / ``open_run(path)`` hooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QWidget,
)

if TYPE_CHECKING:  # the window goes on screen before torch (and the session layer) load
    from studio.session import AppState

AREAS = {
    "left": Qt.DockWidgetArea.LeftDockWidgetArea,
    "right": Qt.DockWidgetArea.RightDockWidgetArea,
    "top": Qt.DockWidgetArea.TopDockWidgetArea,
    "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
}
MAX_RECENT = 8
BUILD_GAP_MS = 10  # build_panels_in_turns: the event loop's time between two panel builds
LAYOUT_VERSION = 1  # bump when the default panel set changes incompatibly


def device_name() -> str:
    """What training would run on: the CUDA device's name, else CPU."""
    import torch

    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return "CPU"


class MainWindow(QMainWindow):
    panel_built = Signal(str)  # key: the dock's panel replaced its "Loading" line
    all_panels_built = Signal()  # build_panels_in_turns() reached the last one

    def __init__(self, state: AppState, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.state = state
        self.settings = settings if settings is not None else QSettings("DiffusionStudio", "diffusion-studio")
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self._factories: dict[str, Callable[[], QWidget]] = {}  # panels built on first use
        self._queue: list[str] | None = None  # build_panels_in_turns(): the keys still to build
        self._restored = False
        self.setWindowTitle("Diffusion Studio")
        self.setDockNestingEnabled(True)
        self.setDockOptions(self.dockOptions() | QMainWindow.DockOption.AllowTabbedDocks)
        self.resize(1500, 920)

        self._build_menus()
        self._build_status_bar()
        state.run_dir_changed.connect(self._on_run_dir_changed)
        state.dataset_changed.connect(self._on_dataset_changed)

    # --- panels ------------------------------------------------------------------------
    def add_panel(self, key: str, title: str, widget: QWidget | None = None, area: str | Qt.DockWidgetArea = "right",
                  tabify_with: str | None = None, factory: Callable[[], QWidget] | None = None) -> QDockWidget:
        """Put ``widget`` in a dock named ``key`` (see the module docstring); or, with
        ``factory`` instead, a one-line "Loading" label that ``panel(key)`` replaces by
        ``factory()`` when the panel is first needed."""
        if key in self.docks:
            raise ValueError(f"panel {key!r} is already in the window")
        if (widget is None) == (factory is None):
            raise ValueError(f"panel {key!r}: give a widget or a factory")
        dock = QDockWidget(title, self)
        dock.setObjectName(key)  # QSettings finds the dock by this name
        if widget is None:
            waiting = QLabel(f"Loading {title}…")
            waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
            dock.setWidget(waiting)
            self._factories[key] = factory
            dock.visibilityChanged.connect(lambda visible, key=key: visible and self._shown_before_built(key))
        else:
            dock.setWidget(widget)
            self.panels[key] = widget
        self.addDockWidget(AREAS[area] if isinstance(area, str) else area, dock)
        dock.show()  # a dock added to a window already on screen starts hidden
        if tabify_with is not None and tabify_with in self.docks:
            self.tabifyDockWidget(self.docks[tabify_with], dock)
        self.docks[key] = dock
        action = dock.toggleViewAction()
        action.setText(title)
        self.view_menu.insertAction(self._view_separator, action)
        if self._restored:  # a panel added after restore_layout() gets its saved place
            self.restoreDockWidget(dock)
        return dock

    def panel(self, key: str) -> QWidget:
        """The panel in dock ``key``, built now if it was not yet."""
        if key not in self.panels:
            factory = self._factories.pop(key)  # KeyError: no such panel
            dock = self.docks[key]
            widget = factory()
            waiting = dock.widget()
            dock.setWidget(widget)
            waiting.deleteLater()
            self.panels[key] = widget
            self.panel_built.emit(key)
        return self.panels[key]

    def build_panels_in_turns(self) -> None:
        """Build every panel not built yet, one per turn of the event loop (the window
        paints and answers between two), the docks on screen first; a dock shown
        meanwhile (its tab raised) goes next. Emits ``all_panels_built`` at the end."""
        visible = [k for k in self._factories  # a tab behind another is "visible" with nothing on screen
                   if self.docks[k].isVisible() and not self.docks[k].visibleRegion().isEmpty()]
        self._queue = visible + [k for k in self._factories if k not in visible]
        self._build_next()

    def loading(self) -> bool:
        """``build_panels_in_turns`` has panels still to build (the app is starting)."""
        return self._queue is not None

    def _shown_before_built(self, key: str) -> None:
        if self._queue is not None and key in self._queue:  # loading: this one next
            self._queue.remove(key)
            self._queue.insert(0, key)

    def _build_next(self) -> None:
        while self._queue and self._queue[0] in self.panels:  # built meanwhile by panel(key)
            self._queue.pop(0)
        if not self._queue:
            self._queue = None
            self.statusBar().showMessage("Ready", 3000)
            self.all_panels_built.emit()
            return
        # said before the build: the message paints in this turn, the build runs in a later
        # one; not a 0 ms timer: chained, those ran before every other timer (the app's
        # polls, measured 4 s late while six panels built)
        self.statusBar().showMessage(f"Loading {self.docks[self._queue[0]].windowTitle()}…")
        QTimer.singleShot(BUILD_GAP_MS, self._build_first)

    def _build_first(self) -> None:
        if self._queue:  # its head: a tab raised since the last turn went there
            self.panel(self._queue.pop(0))
        self._build_next()

    def raise_panel(self, key: str) -> None:
        self.panel(key)
        dock = self.docks[key]
        dock.show()
        dock.raise_()

    # --- menus -------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "Open &data…", self.open_data, QKeySequence.StandardKey.Open,
                     "Choose a data source in the Data panel")
        self.recent_data_menu = file.addMenu("Recent data")
        self._action(file, "Open &run…", self.ask_open_run, "Ctrl+Shift+O", "Open a run directory")
        self.recent_runs_menu = file.addMenu("Recent runs")
        self._action(file, "&Plugins folder…", self.ask_plugins_folder,
                     tip="Load schedules, samplers, networks or datasets from the *.py files of a folder")
        file.addSeparator()
        self._action(file, "&Export plots…", self.ask_export_plots, "Ctrl+E", "Save every panel's plots as PNG")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.view_menu = bar.addMenu("&View")
        self._view_separator = self.view_menu.addSeparator()
        self._action(self.view_menu, "Reset layout", self.reset_layout, tip="Show every panel in its default place")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "About Diffusion Studio", self.show_about)
        self._fill_recent()

    def open_data(self) -> None:
        if "data" in self.docks:
            panel = self.panel("data")
            self.raise_panel("data")
            if hasattr(panel, "open_data_dialog"):
                panel.open_data_dialog()

    def ask_open_run(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run directory")
        if path:
            self.open_run(path)

    def open_run(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            self.statusBar().showMessage(f"run directory not found: {path}", 8000)
            return
        self.state.set_run_dir(path)

    def ask_plugins_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Plugins folder", self.settings.value("plugins/folder", "") or "")
        if folder:
            self.load_plugins(folder)

    def load_plugins(self, folder: str | Path | None) -> None:
        """Installed entry points and the chosen folder (remembered for the next start);
        a broken plugin is reported by file and the others still load."""
        report = self.state.load_plugins(folder)
        self.settings.setValue("plugins/folder", str(folder) if folder else "")
        if folder is None and not report.loaded and not report.errors:
            return  # nothing installed, nothing chosen: nothing to say
        added = sum(len(names) for names in report.added.values())
        text = f"plugins: {len(report.loaded)} loaded, {added} name(s) added"
        if report.errors:
            text += "; failed: " + "; ".join(f"{source}: {message}" for source, message in report.errors)
        self.statusBar().showMessage(text, 15000)

    def ask_export_plots(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export plots to folder")
        if folder:
            written = self.export_plots(folder)
            self.statusBar().showMessage(f"wrote {len(written)} PNG file(s) to {folder}", 8000)

    def export_plots(self, folder: str | Path) -> list[Path]:
        written: list[Path] = []
        for key in list(self.docks):
            panel = self.panel(key)  # every panel's plots, built ones or not
            if hasattr(panel, "export_plots"):
                try:
                    written += panel.export_plots(Path(folder))
                except OSError as e:
                    self.statusBar().showMessage(f"{key}: cannot write plots to {folder}: {e}", 8000)
        return written

    def show_shortcuts(self) -> None:
        rows = []
        for menu in (a.menu() for a in self.menuBar().actions() if a.menu()):
            for a in menu.actions():
                if not a.shortcut().isEmpty():
                    rows.append(f"<tr><td>{a.text().replace('&', '')}</td>"
                                f"<td><b>{a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}</b></td></tr>")
        QMessageBox.information(self, "Keyboard shortcuts", "<table cellspacing=6>" + "".join(rows) + "</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Diffusion Studio",
            "<b>Diffusion Studio</b><br>A desktop lab for diffusion models: load data, design a "
            "noise schedule by looking at it, train NCSN, DDPM or VDM, and scrub the reverse process."
            f"<br><br>Device: {device_name()}",
        )

    # --- recent runs and data (QSettings) ---------------------------------------------
    def _recent(self, key: str) -> list[str]:
        value = self.settings.value(key, [])
        if isinstance(value, str):  # QSettings gives a bare string for a one-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def remember(self, key: str, item: str) -> None:
        """Put ``item`` first in the recent list ``key`` ("recent_runs" or "recent_data")."""
        items = [item] + [v for v in self._recent(key) if v != item]
        self.settings.setValue(key, items[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        for menu, key, slot in ((self.recent_runs_menu, "recent_runs", self.open_run),
                                (self.recent_data_menu, "recent_data", self._open_recent_data)):
            menu.clear()
            items = self._recent(key)
            for item in items:
                action = menu.addAction(item)
                action.setData(item)
                action.triggered.connect(self._on_recent_triggered)
                action.setProperty("slot", key)
            menu.setEnabled(bool(items))

    def _on_recent_triggered(self) -> None:
        action = self.sender()
        if action.property("slot") == "recent_runs":
            self.open_run(action.data())
        else:
            self._open_recent_data(action.data())

    def _open_recent_data(self, item: str) -> None:
        panel = self.panel("data") if "data" in self.docks else None
        if panel is not None and hasattr(panel, "open_recent"):
            self.raise_panel("data")
            panel.open_recent(item)

    def _on_dataset_changed(self, dataset) -> None:
        # file sources are worth remembering; built-in sets are one click away anyway
        if dataset is not None and self.state.data_options.get("path"):
            self.remember("recent_data", json.dumps(self.state.data_options, sort_keys=True))

    def _on_run_dir_changed(self, path) -> None:
        if path is not None:
            self.remember("recent_runs", str(path))
            self.statusBar().showMessage(f"run: {path}", 5000)

    # --- status bar ------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.device_label = QLabel()  # show_device(), once torch is loaded
        self.device_label.setToolTip("Device training runs on")
        bar.addPermanentWidget(self.progress_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.device_label)
        self.clear_progress()

    def show_device(self) -> None:
        self.device_label.setText(device_name())

    def show_progress(self, text: str, fraction: float | None = None) -> None:
        """Job progress in the status bar; ``fraction`` None shows a busy bar."""
        self.progress_label.setText(text)
        self.progress_label.show()
        if fraction is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
        self.progress_bar.show()

    def clear_progress(self) -> None:
        self.progress_label.hide()
        self.progress_bar.hide()

    # --- layout memory -----------------------------------------------------------------
    def restore_layout(self) -> bool:
        """Apply the saved geometry and dock layout; call once the panels are added
        (``build_window`` does). Returns whether a saved layout was found."""
        self._restored = True
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            return self.restoreState(state, LAYOUT_VERSION)
        return False

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        """The first panel on the left, the others tabbed on the right."""
        docks = list(self.docks.values())
        for dock in docks:
            # dissolve the old places first: re-tabbing docks that are already tabbed
            # left Qt's old tab bar on screen, a stray strip of tabs over the panels
            self.removeDockWidget(dock)
            dock.setFloating(False)
        if not docks:
            return
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, docks[0])
        if len(docks) > 1:
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks[1])
            for dock in docks[2:]:
                self.tabifyDockWidget(docks[1], dock)
            docks[1].raise_()
            self.resizeDocks(docks[:2], [380, 1100], Qt.Orientation.Horizontal)
        for dock in docks:
            dock.show()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        for panel in self.panels.values():
            # a panel with running work may ask the user (training: stop and save?)
            if hasattr(panel, "confirm_close") and not panel.confirm_close():
                event.ignore()
                return
        self.save_layout()
        for panel in self.panels.values():
            if hasattr(panel, "shutdown"):
                panel.shutdown()  # stop workers before the widgets go
        super().closeEvent(event)

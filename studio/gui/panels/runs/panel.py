"""The Runs panel: every run under a folder side by side (a view over
``studio.session.runs.RunsSession``).

The table lists each run's state (live), method, schedule, network, steps, last loss and
the figures of its last ``evaluate``; select several and their curves are overlaid, one
colour per run, with the config keys in which they differ in a table beside. A row
opens in the viewer, is followed by the training panel (read-only, live), resumes there,
or is revealed in the file manager. The session reads the disk on its worker thread;
this panel only draws what it hands over, from a 200 ms timer.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSettings, QSortFilterProxyModel, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSlider,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.run_index import X_AXES, format_value
from studio.session import PALETTE, AppState, default_runs_root
from studio.session.runs import RunsSession

from ...widgets import MessageBanner
from .overlays import AXIS_LABELS, Overlay, RunOverlays
from .table import COLUMNS, PATH_ROLE, SORT_ROLE, RunsTableModel

POLL_MS = 200
ROOT_KEY = "runs/root"  # QSettings: the folder the table lists
RESUMABLE = ("stopped", "failed")


def reveal_folder(path: Path) -> bool:
    """Open the folder in the desktop's file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class RunsPanel(QWidget):
    def __init__(self, state: AppState, window=None, parent=None, session: RunsSession | None = None):
        super().__init__(parent)
        self.state, self.window = state, window
        settings = window.settings if window is not None else QSettings("DiffusionStudio", "diffusion-studio")
        self.settings = settings
        root = settings.value(ROOT_KEY, "") or str(default_runs_root())
        self.session = session or RunsSession(root)

        # --- the folder listed --------------------------------------------------------------
        self.root_edit = QLineEdit(str(self.session.root or ""))
        self.root_edit.setToolTip("Every run directory under this folder is listed (runs opened elsewhere too)")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._ask_root)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the folder again (it is also re-read every few seconds)")
        self.count_label = QLabel("")
        top = QHBoxLayout()
        top.addWidget(QLabel("Runs in"))
        top.addWidget(self.root_edit, 1)
        top.addWidget(browse)
        top.addWidget(self.refresh_button)
        top.addWidget(self.count_label)

        # --- the table -------------------------------------------------------------------------
        self.model = RunsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("Run"), Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # sized to the contents when rows come or go, not on every live update (a
        # ResizeToContents header measures every cell at each change)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _: self.open_in_viewer())

        self.viewer_button = QPushButton("Open in viewer")
        self.follow_button = QPushButton("Follow")
        self.follow_button.setToolTip("Show it in the training panel, live while it is being written")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a stopped run from its last checkpoint in the training panel")
        self.reveal_button = QPushButton("Reveal folder")
        self.viewer_button.clicked.connect(self.open_in_viewer)
        self.follow_button.clicked.connect(self.follow)
        self.resume_button.clicked.connect(self.resume)
        self.reveal_button.clicked.connect(self.reveal)
        actions = QHBoxLayout()
        for b in (self.viewer_button, self.follow_button, self.resume_button, self.reveal_button):
            actions.addWidget(b)
        actions.addStretch(1)
        self.banner = MessageBanner()

        # the config keys that differ between the selected runs, beside the table
        self.diff_title = QLabel()
        self.diff_title.setWordWrap(True)
        self.diff_table = QTableWidget()
        self.diff_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        diff_box = QWidget()
        dl = QVBoxLayout(diff_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.diff_title)
        dl.addWidget(self.diff_table, 1)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table, 1)
        tl.addLayout(actions)
        table_split = QSplitter(Qt.Orientation.Horizontal)
        table_split.addWidget(table_box)
        table_split.addWidget(diff_box)
        table_split.setStretchFactor(0, 3)
        table_split.setStretchFactor(1, 2)
        upper = QWidget()
        lay = QVBoxLayout(upper)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.banner)
        lay.addWidget(table_split, 1)

        # --- overlays and the differing keys ------------------------------------------------
        self.axis_combo = QComboBox()
        for axis in X_AXES:
            self.axis_combo.addItem(AXIS_LABELS[axis], axis)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(60)  # TensorBoard's default 0.6
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_label = QLabel("smoothing 0.60")
        self.log_loss = QCheckBox("log loss")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("x axis"))
        controls.addWidget(self.axis_combo)
        controls.addSpacing(12)
        controls.addWidget(self.smooth_label)
        controls.addWidget(self.smooth_slider)
        controls.addWidget(self.log_loss)
        controls.addStretch(1)
        self.overlays = RunOverlays()
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(controls)
        ll.addWidget(self.overlays, 1)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setStretchFactor(1, 2)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(split)

        # --- wiring ------------------------------------------------------------------------------
        self.root_edit.editingFinished.connect(self._on_root_edited)
        self.refresh_button.clicked.connect(self.session.refresh)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_buttons())
        self.axis_combo.currentIndexChanged.connect(lambda _: self.overlays.set_axis(self.axis_combo.currentData()))
        self.smooth_slider.valueChanged.connect(self._on_smoothing)
        self.log_loss.toggled.connect(lambda on: self.overlays.plots["loss"].setLogMode(y=on))
        self.session.listed.connect(self._on_listed)
        self.session.curves_changed.connect(lambda _: self._draw())
        self.session.selection_changed.connect(lambda _: self._draw())
        self.session.error.connect(self.banner.show_error)
        state.run_dir_changed.connect(self._on_run_dir)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.session.poll)
        self._timer.start()
        if state.run_dir is not None:
            self.session.add_run(state.run_dir)
        self.session.refresh()
        self._draw()
        self._update_buttons()

    # --- the folder -------------------------------------------------------------------------
    def set_root(self, root: str | Path) -> None:
        self.root_edit.setText(str(root))
        self._on_root_edited()

    def _on_root_edited(self) -> None:
        text = self.root_edit.text().strip()
        root = Path(text).expanduser() if text else None
        if root != self.session.root:
            self.settings.setValue(ROOT_KEY, str(root) if root else "")
            self.session.set_root(root)

    def _ask_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of runs", self.root_edit.text())
        if folder:
            self.set_root(folder)

    def _on_run_dir(self, path) -> None:
        if path is not None:
            self.session.add_run(path)

    # --- the table ----------------------------------------------------------------------------
    def _on_listed(self, runs: list) -> None:
        if not self.model.set_runs(runs):
            self._restore_selection()
            self.table.resizeColumnsToContents()
        running = sum(r.state == "running" for r in runs)
        self.count_label.setText(f"{len(runs)} run(s)" + (f", {running} running" if running else ""))
        self._update_buttons()

    def _restore_selection(self) -> None:
        """After the rows were rebuilt: select again the runs that were selected."""
        sel = self.table.selectionModel()
        sel.blockSignals(True)
        sel.clearSelection()
        for path in self.session.selected:
            row = self.model.row_of(path)
            if row >= 0:
                index = self.proxy.mapFromSource(self.model.index(row, 0))
                sel.select(index, QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
        sel.blockSignals(False)
        self.table.viewport().update()

    def selected_paths(self) -> list[Path]:
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [Path(i.data(PATH_ROLE)) for i in rows]

    def select_runs(self, paths: list[str | Path]) -> None:
        """Select these runs in the table (what a user's clicks do)."""
        sel = self.table.selectionModel()
        sel.clearSelection()
        for path in paths:
            row = self.model.row_of(Path(path))
            if row >= 0:
                index = self.proxy.mapFromSource(self.model.index(row, 0))
                sel.select(index, QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
                sel.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)

    def _on_table_selection(self, *_) -> None:
        self.session.select(self.selected_paths())
        self._update_buttons()

    def current_path(self) -> Path | None:
        index = self.table.selectionModel().currentIndex()
        if index.isValid():
            return Path(index.data(PATH_ROLE))
        paths = self.selected_paths()
        return paths[0] if paths else None

    def _summary(self, path: Path | None):
        return self.session.summaries.get(path) if path is not None else None

    def _update_buttons(self) -> None:
        path = self.current_path()
        summary = self._summary(path)
        training = self._has_training()
        self.viewer_button.setEnabled(summary is not None)
        self.reveal_button.setEnabled(summary is not None)
        self.follow_button.setEnabled(summary is not None and training)
        self.resume_button.setEnabled(summary is not None and training and summary.state in RESUMABLE)

    def _context_menu(self, pos) -> None:
        if self.current_path() is None:
            return
        menu = QMenu(self)
        for button in (self.viewer_button, self.follow_button, self.resume_button, self.reveal_button):
            action = menu.addAction(button.text())
            action.setEnabled(button.isEnabled())
            action.triggered.connect(button.click)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # --- row actions --------------------------------------------------------------------------
    def _has_training(self) -> bool:
        """The window has a Training dock (its panel may not be built yet: panels are
        built on first use, so ask for it by key, never look it up in ``panels``)."""
        return self.window is not None and "training" in getattr(self.window, "docks", {})

    def _training_panel(self):
        return self.window.panel("training") if self._has_training() else None

    def open_in_viewer(self) -> None:
        path = self.current_path()
        if path is None:
            return
        if self.window is not None:
            self.window.open_run(path)
            if "viewer" in self.window.docks:
                self.window.raise_panel("viewer")
        else:
            self.state.set_run_dir(path)

    def follow(self) -> bool:
        path, training = self.current_path(), self._training_panel()
        if path is None or training is None:
            return False
        ok = training.open_run(path)
        if ok:
            self.window.raise_panel("training")
        return ok

    def resume(self) -> bool:
        path, training = self.current_path(), self._training_panel()
        if path is None or training is None:
            return False
        ok = training.resume_run(path)
        if ok:
            self.window.raise_panel("training")
        return ok

    def reveal(self) -> bool:
        path = self.current_path()
        return path is not None and reveal_folder(path)

    # --- overlays -----------------------------------------------------------------------------
    def _on_smoothing(self, value: int) -> None:
        self.smooth_label.setText(f"smoothing {value / 100:.2f}")
        self.overlays.set_smoothing(value / 100)

    def colors(self) -> dict[Path, str]:
        return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(self.session.selected)}

    def _draw(self) -> None:
        session = self.session
        colors = self.colors()
        keys = list(session.differing())
        overlays = [Overlay(p, session.label(p, keys), colors[p], session.curves[p]) for p in session.selected if p in session.curves]
        self.overlays.show_runs(overlays)
        if colors != self.model.colors:
            self.model.set_colors(colors)
            self.table.resizeColumnToContents(COLUMNS.index("Run"))  # room for the colour swatch
        self._show_differing(keys)

    def _show_differing(self, keys: list[str]) -> None:
        session, table = self.session, self.diff_table
        paths = [p for p in session.selected if p in session.summaries]
        diff = session.differing()
        if len(paths) < 2:
            self.diff_title.setText("Select two or more runs to see the settings in which they differ.")
        elif not diff:
            self.diff_title.setText("The selected runs have the same config.")
        else:
            self.diff_title.setText(f"{len(diff)} setting(s) differ:")
        table.clear()
        table.setRowCount(len(diff))
        table.setColumnCount(len(paths) if diff else 0)
        colors = self.colors()
        if diff:
            for col, path in enumerate(paths):  # each run's column headed by its name and colour
                header = QTableWidgetItem(session.summaries[path].name)
                swatch = QPixmap(10, 10)
                swatch.fill(QColor(colors[path]))
                header.setIcon(QIcon(swatch))
                table.setHorizontalHeaderItem(col, header)
        table.setVerticalHeaderLabels(list(diff))
        for row, values in enumerate(diff.values()):
            for col, value in enumerate(values):
                item = QTableWidgetItem(format_value(value))
                item.setForeground(Qt.GlobalColor.black)
                table.setItem(row, col, item)
        table.resizeColumnsToContents()

    def differing_rows(self) -> dict[str, list[str]]:
        """What the differing-keys table shows: key -> the text of each run's cell."""
        t = self.diff_table
        return {t.verticalHeaderItem(r).text(): [t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())}

    def export_plots(self, folder: str | Path) -> list[Path]:
        """The overlays of the selected runs as a PNG (nothing when none is selected)."""
        if not self.overlays.overlays:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return [self.overlays.export_png(folder / "runs_overlays.png")]

    def shutdown(self) -> None:
        self._timer.stop()
        self.session.shutdown()

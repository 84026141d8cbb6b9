"""The sampler lab: pick the run's checkpoint, tick samplers, enter NFE budgets, Run.

A view over ``studio.session.compare.CompareSession``: the plot has one curve per
sampler of the chosen quality figure against the NFE each cell counted (log x), drawn
again as each cell finishes; hovering a point shows that cell's samples below it;
clicking one opens its trajectory in the reverse-process viewer. The table exports as
CSV (every column, with the checkpoint hash and studio version), the figure as PNG or SVG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.engine import compare
from studio.session.compare import CompareSession
from studio.session.state import AppState

from ...job_bridge import JobBridge
from ...widgets import ImageGridView, MessageBanner, ScatterView, controls_beside

COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
SYMBOLS = ["o", "s", "t", "d"]  # past the 8 colours (11 built-in samplers), a new marker and dashes


def curve_style(k: int) -> tuple[str, str, Qt.PenStyle]:
    """The colour, marker and line style of the k-th sampler's curve: distinct for 32."""
    turn = k // len(COLORS)
    style = Qt.PenStyle.SolidLine if turn % 2 == 0 else Qt.PenStyle.DashLine
    return COLORS[k % len(COLORS)], SYMBOLS[turn % len(SYMBOLS)], style
DEFAULT_BUDGETS = ",".join(str(b) for b in compare.DEFAULT_BUDGETS)
LOG_Y = ("sliced_wasserstein", "frechet_digits")  # positive figures spanning decades
DEFAULT_TICKED = ("ancestral", "ddim")


class SamplersPanel(QWidget):
    """Dock ``samplers``. ``open_requested(path)`` is emitted with a cell's trajectory
    when there is no main window to hand it to."""

    open_requested = Signal(str)

    def __init__(self, state: AppState, window=None, parent=None):
        super().__init__(parent)
        self.state, self.window = state, window
        self.session = CompareSession(state)
        self.bridge = JobBridge(parent=self, driver=self.session.driver)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self.shown_cell: int | None = None

        self.banner = MessageBanner()
        self.run_label = QLabel("No run open (File > Open run).")
        self.run_label.setWordWrap(True)
        self.checkpoint = QComboBox()
        self.sampler_list = QListWidget()
        self.sampler_list.setMaximumHeight(150)
        self.budgets = QLineEdit(DEFAULT_BUDGETS)
        self.budgets.setToolTip("NFE budgets, comma-separated: each cell takes the most steps whose network calls fit")
        self.n = QSpinBox(minimum=0, maximum=100_000, value=0, specialValueText="default")
        self.n.setToolTip("samples per cell (default: 1000 points or 256 images)")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.figure = QComboBox()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.csv_button = QPushButton("Export table (CSV)…")
        self.figure_button = QPushButton("Export figure (PNG/SVG)…")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint)
        form.addRow("NFE budgets", self.budgets)
        form.addRow("Samples", self.n)
        form.addRow("Seed", self.seed)
        form.addRow("Figure", self.figure)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 4, 0)
        column.addWidget(self.run_label)
        box = QGroupBox("Samplers")
        QVBoxLayout(box).addWidget(self.sampler_list)
        column.addWidget(box)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.status)
        column.addWidget(self.csv_button)
        column.addWidget(self.figure_button)
        column.addStretch(1)

        self.plot = pg.PlotWidget(background="w")
        self.plot_item = self.plot.getPlotItem()
        self.plot_item.setLogMode(x=True, y=False)
        self.plot_item.showGrid(x=True, y=True, alpha=0.25)
        self.plot_item.setLabel("bottom", "network evaluations (NFE)")
        self.plot_item.addLegend(offset=(-10, 10))
        self.plot_item.setMenuEnabled(False)
        self.preview_label = QLabel("Hover a point to see its samples; click it to open its trajectory in the viewer.")
        self.preview_label.setWordWrap(True)
        self.images = ImageGridView()
        self.points = ScatterView(size=2.0)
        self.preview = QStackedWidget()
        self.preview.addWidget(self.images)
        self.preview.addWidget(self.points)
        views = QWidget()
        right = QVBoxLayout(views)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.plot, 3)
        right.addWidget(self.preview_label)
        right.addWidget(self.preview, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.banner)
        layout.addWidget(controls_beside(controls, views, controls_width=240), 1)

        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.bridge.cancel)
        self.csv_button.clicked.connect(self.ask_csv)
        self.figure_button.clicked.connect(self.ask_figure)
        self.figure.currentIndexChanged.connect(self.redraw)
        self.bridge.started.connect(lambda: self._running(True))
        self.bridge.ended.connect(self._on_ended)
        self.session.run_changed.connect(self._on_run_changed)
        self.session.checkpoints_changed.connect(self._fill_checkpoints)
        self.session.row_added.connect(self._on_row)
        self.session.cleared.connect(self._on_cleared)
        self._update_exports()
        if state.run_dir is not None:
            self.session.open(state.run_dir)

    # --- the run --------------------------------------------------------------------------
    def _on_run_changed(self, run) -> None:
        self.sampler_list.clear()
        if run is None:
            self.run_label.setText("No run open (File > Open run).")
            self._fill_checkpoints([])
            return
        self.run_label.setText(f"Run {run.path.name} ({self.session.family()})")
        for name in self.session.samplers():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_TICKED else Qt.CheckState.Unchecked)
            self.sampler_list.addItem(item)
        self._fill_checkpoints(self.session.checkpoints)

    def _fill_checkpoints(self, paths: list) -> None:
        self.checkpoint.clear()
        for p in paths:
            self.checkpoint.addItem(Path(p).name, str(p))
        if paths:
            self.checkpoint.setCurrentIndex(len(paths) - 1)  # the newest

    def set_ticked(self, names: list[str]) -> None:
        for k in range(self.sampler_list.count()):
            item = self.sampler_list.item(k)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def ticked(self) -> list[str]:
        items = (self.sampler_list.item(k) for k in range(self.sampler_list.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    # --- the job --------------------------------------------------------------------------
    def budgets_value(self) -> list[int]:
        text = self.budgets.text()
        try:
            values = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise StudioError(f"NFE budgets {text!r}: expected comma-separated integers, e.g. {DEFAULT_BUDGETS}") from None
        if not values:
            raise StudioError(f"NFE budgets: give at least one, e.g. {DEFAULT_BUDGETS}")
        return values

    def start(self) -> bool:
        """Run the comparison with the form's settings; a bad setting is shown, not raised."""
        self.banner.clear()
        try:
            samplers = self.ticked()
            if not samplers:
                raise StudioError("Tick at least one sampler.")
            self.session.start(samplers, self.budgets_value(), n=self.n.value() or None, seed=self.seed.value(),
                               checkpoint_path=self.checkpoint.currentData())
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return False
        return True

    def _running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self._update_exports()

    def _on_cleared(self) -> None:
        self.plot_item.clear()
        self.plot_item.legend.clear()
        self._curves = {}
        self.shown_cell = None
        self.images.clear_images()
        self.points.set_points(np.zeros((0, 2)))
        self.figure.blockSignals(True)
        self.figure.clear()
        self.figure.blockSignals(False)
        self.status.setText("Running…")

    def _on_row(self, event) -> None:
        if self.figure.count() == 0:  # the first row says which figures this data has
            self.figure.blockSignals(True)
            for score in compare.score_columns([event.row]):
                self.figure.addItem(score)
            default = "frechet_digits" if "frechet_digits" in event.row else "sliced_wasserstein"
            self.figure.setCurrentIndex(max(0, self.figure.findText(default)))
            self.figure.blockSignals(False)
        self.status.setText(f"{event.cell + 1} / {event.total} cells: {event.row['sampler']} at {event.row['nfe']} NFE "
                            f"in {event.row['wall_s']:.2f} s")
        self.redraw()
        if self.shown_cell is None:
            self.show_cell(event.cell)

    def _on_ended(self, last) -> None:
        self._running(False)
        rows = self.session.rows
        if getattr(last, "message", None):  # Failed
            self.banner.show_error(f"Comparison failed: {last.message}")
        elif self.session.cancelled:
            self.status.setText(f"Stopped after {len(rows)} cells.")
        elif rows:
            self.status.setText(f"Done: {len(rows)} cells, seed {rows[0]['seed']}, n {rows[0]['n']}, "
                                f"checkpoint {Path(rows[0]['checkpoint']).name} ({rows[0]['checkpoint_sha256'][:12]}).")
        self._update_exports()

    def shutdown(self) -> None:
        self.bridge.stop_and_wait(10)

    # --- the figure -----------------------------------------------------------------------
    def score(self) -> str | None:
        return self.figure.currentText() or None

    def redraw(self) -> None:
        """One curve per sampler of the chosen figure against counted NFE (log x)."""
        score, cells = self.score(), self.session.cells
        if score is None:
            return
        log_y = score in LOG_Y and all(c.row.get(score, 0) > 0 for c in cells)
        self.plot_item.setLogMode(x=True, y=log_y)
        self.plot_item.setLabel("left", score)
        for k, name in enumerate(dict.fromkeys(c.row["sampler"] for c in cells)):
            mine = sorted((c for c in cells if c.row["sampler"] == name), key=lambda c: c.row["nfe"])
            x = np.array([c.row["nfe"] for c in mine], dtype=np.float64)
            y = np.array([c.row.get(score, np.nan) for c in mine], dtype=np.float64)
            curve = self._curves.get(name)
            if curve is None:
                color, symbol, style = curve_style(k)
                curve = pg.PlotDataItem(pen=pg.mkPen(color, width=2, style=style), symbol=symbol, symbolSize=9,
                                        symbolBrush=color, symbolPen="w", name=name, connect="finite")
                # PlotDataItem does not pass hover options on to its points' item
                curve.scatter.opts.update(hoverable=True, tip=None)
                curve.sigPointsHovered.connect(self._on_hovered)
                curve.sigPointsClicked.connect(self._on_clicked)
                self.plot_item.addItem(curve)
                self._curves[name] = curve
            curve.setData(x, y, data=[c.cell for c in mine])
        self._set_ticks(log_y)

    def _set_ticks(self, log_y: bool) -> None:
        """NFE ticks at the budgets (and an adaptive solver's counted NFE; Heun's 9 beside
        a budget of 10 would print over it) on the log x; on a log y, 1-2-3-5-7 ticks with plain
        numbers (pyqtgraph's own log labels read "6·10²")."""
        cells = self.session.cells
        nfe = sorted({c.row["nfe_budget"] if c.row["nfe_budget"] is not None else c.row["nfe"] for c in cells})
        self.plot_item.getAxis("bottom").setTicks([[(float(np.log10(v)), str(v)) for v in nfe], []])
        left = self.plot_item.getAxis("left")
        left.enableAutoSIPrefix(False)
        values = np.array([c.row.get(self.score(), np.nan) for c in cells], dtype=np.float64)
        values = values[np.isfinite(values) & (values > 0)]
        if not log_y or not len(values):
            left.setTicks(None)
            return
        lo, hi = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
        ticks = [m * 10.0**e for e in np.arange(lo, hi + 1) for m in (1, 2, 3, 5, 7)]
        ticks = [t for t in ticks if values.min() / 1.5 <= t <= values.max() * 1.5]
        left.setTicks([[(float(np.log10(t)), f"{t:.3g}") for t in ticks], []])

    def curve_data(self, sampler: str) -> tuple[np.ndarray, np.ndarray]:
        """What the plot holds for ``sampler``: (NFE, figure) as drawn (before log)."""
        x, y = self._curves[sampler].getOriginalDataset()
        return np.asarray(x), np.asarray(y)

    def _on_hovered(self, item, points, ev) -> None:
        if len(points):
            self.show_cell(int(points[0].data()))

    def _on_clicked(self, item, points, ev) -> None:
        if len(points):
            self.open_cell(int(points[0].data()))

    def _cell(self, index: int):
        return next(c for c in self.session.cells if c.cell == index)

    def show_cell(self, index: int) -> None:
        """Show that cell's samples under the plot."""
        cell = self._cell(index)
        self.shown_cell = index
        row = cell.row
        figures = ", ".join(f"{compare.SHORT[k]} {row[k]:.4g}" for k in compare.score_columns([row]))
        self.preview_label.setText(f"{row['sampler']}, {row['steps']} steps, {row['nfe']} NFE: {figures}. Click to open its trajectory.")
        if cell.images is not None:
            self.preview.setCurrentWidget(self.images)
            self.images.set_images(cell.images)
        elif cell.points is not None:
            self.preview.setCurrentWidget(self.points)
            # the data's own box (4 standard deviations), the same for every cell: a
            # sampler that throws a few points far away does not shrink the others
            info = self.session.run.data_info() if self.session.run is not None else None
            self.points.set_points(cell.points, autorange=info is None)
            if info is not None:
                lo, hi = np.asarray(info.shift - 4 * info.scale), np.asarray(info.shift + 4 * info.scale)
                self.points.set_range(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))

    def open_cell(self, index: int) -> None:
        """Open the cell's trajectory in the reverse-process viewer."""
        cell = self._cell(index)
        if not cell.trajectory:
            self.banner.show_error("This cell wrote no trajectory.")
            return
        viewer = self._viewer()
        if viewer is None:
            self.open_requested.emit(cell.trajectory)
            return
        if viewer.open_trajectory(cell.trajectory):
            self.window.raise_panel("viewer")

    def _viewer(self):
        if self.window is None:
            return None
        try:
            return self.window.panel("viewer")
        except KeyError:
            return None

    # --- export ---------------------------------------------------------------------------
    def _update_exports(self) -> None:
        ready = bool(self.session.cells) and not self.bridge.running
        self.csv_button.setEnabled(ready)
        self.figure_button.setEnabled(ready)

    def export_csv(self, path: str | Path) -> Path:
        return self.session.write_csv(path)

    def export_figure(self, path: str | Path) -> Path:
        """The plot as PNG (2x) or SVG, by the file's suffix."""
        from pyqtgraph.exporters import ImageExporter

        path = Path(path)
        if path.suffix.lower() == ".svg":
            self._save_svg(path)
        elif path.suffix.lower() == ".png":
            exporter = ImageExporter(self.plot_item)
            exporter.parameters()["width"] = max(800, int(self.plot_item.width() * 2))
            exporter.export(str(path))
        else:
            raise StudioError(f"figure file {path}: the suffix must be .png or .svg")
        return path

    def _save_svg(self, path: Path) -> None:
        """The plot widget painted into an SVG (Qt's own generator: pyqtgraph 0.14's
        SVGExporter fails to parse the paths this Qt writes)."""
        from PySide6.QtCore import QRect, QSize
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        size = self.plot.size()
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(QSize(size.width(), size.height()))
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle("sample quality against NFE")
        painter = QPainter(generator)
        try:
            self.plot.render(painter)
        finally:
            painter.end()
        if not path.is_file():
            raise StudioError(f"could not write the figure {path}")

    def ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export table", "samplers.csv", "CSV (*.csv)")
        if path:
            self._export(self.export_csv, path)

    def ask_figure(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", "samplers.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self._export(self.export_figure, path)

    def _export(self, write, path: str) -> None:
        try:
            self.banner.show_info(f"Wrote {write(path)}")
        except (StudioError, OSError) as exc:
            self.banner.show_error(str(exc))

    def export_plots(self, folder: Path) -> list[Path]:
        if not self.session.cells:
            return []
        folder = Path(folder)
        return [self.export_figure(folder / "samplers.png"), self.export_csv(folder / "samplers.csv")]

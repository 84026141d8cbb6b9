"""The schedule editor's log-SNR view: what a schedule does to training and sampling.

Three plots on one lambda axis (Kingma & Gao 2023): the noise-level density p(lambda)
of every schedule in the list (a histogram for DDPM's steps and NCSN's levels), with the
selected sampler grid's lambdas as ticks and, on a right-hand axis, a run's loss by noise
level; the weight w(lambda) each objective puts on the squared noise error; and the
effective weight p(lambda) w(lambda) of every schedule under the chosen objective. The
numbers come from ``studio.core.noise_levels`` and ``studio.core.weighting``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from studio.core.errors import StudioError
from studio.core.noise_levels import PLOT_LIMIT, band_shares, grid_ticks, log_snr_density, plot_range
from studio.core.samplers.grids import GRIDS
from studio.core.weighting import effective_weight, get_weighting, normalised, weightings
from studio.engine.schedule_report import default_weightings

WEIGHT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
LOSS_COLOR = "#d62728"
GRID_POINTS = 400
LOSS_BINS = 32
REDRAW_DELAY_MS = 80  # dragging a control point or typing redraws once the user pauses


def band_text(schedule) -> str:
    shares = band_shares(schedule)
    return " · ".join(f"{k.replace('lambda', 'λ')}: {100 * v:.1f}%" for k, v in shares.items())


def run_loss_by_level(run_dir: str | Path, bins: int = LOSS_BINS) -> tuple[int, np.ndarray, np.ndarray]:
    """(last step, bin centres, mean per-sample loss) of a run's latest sampled
    (log-SNR, loss) pairs (``engine.run_index.RunCurves``: the metrics rows' samples)."""
    from studio.engine.run_index import RunCurves

    curves = RunCurves(run_dir)
    curves.update()
    data = curves.data()
    lam = np.clip(data.level_log_snr[np.isfinite(data.level_log_snr)], -PLOT_LIMIT, PLOT_LIMIT)
    if lam.size == 0:
        return data.level_step, np.zeros(0), np.zeros(0)
    edges = np.linspace(lam.min(), max(lam.max(), lam.min() + 1e-6), bins + 1)
    centres, means = data.levels(edges)
    return data.level_step, centres, means


class DecadeLogAxis(pg.AxisItem):
    """A log axis labelled at whole decades only (pyqtgraph labels 2..9 x 10^k too when
    the range spans under ~3 decades, and those labels overlap)."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        decades = [float(v) for v in range(int(np.floor(minVal)), int(np.ceil(maxVal)) + 1) if minVal <= v <= maxVal]
        minor = [v + np.log10(k) for v in range(int(np.floor(minVal)), int(np.ceil(maxVal))) for k in range(2, 10)]
        return [(1.0, decades), (None, [m for m in minor if minVal < m < maxVal])]


class LambdaPlots(pg.GraphicsLayoutWidget):
    """Density (with grid ticks and a right axis for a run's loss), weights, effective weights."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.density = self.addPlot(row=0, col=0, colspan=2)
        self.weight = self.addPlot(row=1, col=0, axisItems={"left": DecadeLogAxis("left")})
        self.effective = self.addPlot(row=1, col=1, axisItems={"left": DecadeLogAxis("left")})
        titles = {
            "density": "noise-level density p(λ) training visits; ticks: sampler grid",
            "weight": "implied weight w(λ) of each objective (normalised, log axis)",
            "effective": "effective weight p(λ)·w(λ) (normalised, log axis)",
        }
        for key, p in (("density", self.density), ("weight", self.weight), ("effective", self.effective)):
            p.setTitle(titles[key], size="9pt")
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setLabel("bottom", "log-SNR λ")
            p.setMenuEnabled(False)
            if p is not self.density:
                p.setLogMode(y=True)
                p.getAxis("left").setStyle(maxTextLevel=0)
        self.density_legend = self.density.addLegend(offset=(-8, 8), labelTextColor="k", brush=pg.mkBrush(255, 255, 255, 220))
        # five objectives in a small plot: two columns at the lower left, where the curves
        # (all normalised to peak 1, most falling with lambda) leave room
        self.weight_legend = self.weight.addLegend(offset=(8, -8), labelTextColor="k", colCount=2,
                                                   brush=pg.mkBrush(255, 255, 255, 140))
        self.ticks = self.density.plot(pen=pg.mkPen("#000", width=1), connect="pairs")
        # the run's loss on a second view box sharing the density plot's lambda axis
        self.loss_box = pg.ViewBox()
        self.density.showAxis("right")
        self.density.scene().addItem(self.loss_box)
        self.density.getAxis("right").linkToView(self.loss_box)
        self.density.getAxis("right").setLabel("run loss", color=LOSS_COLOR)
        self.loss_box.setXLink(self.density)
        self.loss_curve = pg.PlotDataItem(pen=pg.mkPen(LOSS_COLOR, width=2, style=Qt.PenStyle.DashLine),
                                          symbol="o", symbolSize=4, symbolBrush=LOSS_COLOR, symbolPen=None)
        self.loss_box.addItem(self.loss_curve)
        self.density.vb.sigResized.connect(self._sync_loss_box)
        self._density_items: list[pg.PlotDataItem] = []
        self._effective_items: list[pg.PlotDataItem] = []
        self._weight_items: dict[str, pg.PlotDataItem] = {}

    def set_lambda_range(self, lo: float, hi: float) -> None:
        """One lambda range on all three plots (set, not x-linked: pyqtgraph lines up
        x-linked plots that overlap on screen, which a plot spanning two columns does)."""
        for p in (self.density, self.weight, self.effective):
            p.setXRange(lo, hi, padding=0.02)

    def _sync_loss_box(self) -> None:
        self.loss_box.setGeometry(self.density.vb.sceneBoundingRect())

    @staticmethod
    def _match(items: list, plot: pg.PlotItem, n: int) -> None:
        while len(items) > n:
            plot.removeItem(items.pop())
        while len(items) < n:
            items.append(plot.plot())


class LambdaView(QWidget):
    """The controls and plots of the log-SNR view; the editor calls :meth:`set_selected`."""

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.selected = 0
        self.run_dir: Path | None = None
        self.weighting = QComboBox()
        self.weighting.setToolTip("The objective whose effective weight p(λ)·w(λ) is drawn for each schedule")
        self.grid = QComboBox()
        for g in GRIDS:
            self.grid.addItem(g, g)
        self.grid.setToolTip("The sampler grid whose λ per step is drawn as ticks under the density")
        self.grid_steps = QSpinBox()
        self.grid_steps.setRange(1, 5000)
        self.grid_steps.setValue(50)
        self.show_loss = QCheckBox("run's loss by λ")
        self.show_loss.setToolTip("Overlay the loss by noise level of the studio's run (its latest logged steps)")
        self.show_loss.setChecked(True)
        self.grid_label = QLabel("–")
        self.loss_label = QLabel("no run open")
        self.bands_label = QLabel("–")  # the editor shows it among its diagnostics
        self.bands_label.setWordWrap(True)
        self.plots = LambdaPlots()
        row = QHBoxLayout()
        for label, w in (("objective", self.weighting), ("grid", self.grid), ("steps", self.grid_steps)):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        row.addWidget(self.show_loss)
        row.addStretch(1)
        info = QHBoxLayout()
        info.addWidget(self.grid_label, 1)
        info.addWidget(self.loss_label, 1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.plots, 1)
        col.addLayout(info)

        # the plots are redrawn only while shown (a hidden tab is marked stale) and edits
        # are coalesced: one redraw costs tens of schedule evaluations
        self._stale = True
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_DELAY_MS)
        self._timer.timeout.connect(self.redraw)
        self.weighting.activated.connect(lambda _: self.update_effective())
        self.grid.activated.connect(lambda _: self.update_grid())
        self.grid_steps.valueChanged.connect(lambda _: self.update_grid())
        self.show_loss.toggled.connect(lambda _: self.update_loss())
        state.schedules_changed.connect(self.refresh)
        state.schedule_edited.connect(self._on_edited)
        state.plugins_changed.connect(self.refresh)
        state.run_dir_changed.connect(self.set_run)
        self.refresh()
        if getattr(state, "run_dir", None) is not None:
            self.set_run(state.run_dir)

    # --- what is shown ---------------------------------------------------------------
    def selected_schedule(self):
        entries = self.state.schedules
        return entries[self.selected].schedule if 0 <= self.selected < len(entries) else None

    def set_selected(self, index: int) -> None:
        self.selected = index
        self.update_bands()  # the editor's diagnostics show it, whichever tab is up
        if not self.isVisible():
            self._stale = True
            return
        self._fill_weightings()
        self.update_weights()
        self.update_effective()
        self.update_grid()

    def _on_edited(self, index: int) -> None:
        if index == self.selected:
            self.update_bands()
        self._stale = True
        if self.isVisible():
            self._timer.start()

    def refresh(self, *_: object) -> None:
        self._stale = True
        self.selected = min(max(self.selected, 0), len(self.state.schedules) - 1)
        self.update_bands()
        if self.isVisible():
            self.redraw()

    def redraw(self) -> None:
        """Every plot from the state as it is now."""
        self._timer.stop()
        self._stale = False
        self.update_density()
        self.set_selected(self.selected)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.redraw()

    def _fill_weightings(self) -> None:
        sched = self.selected_schedule()
        if sched is None:
            return
        names = default_weightings(sched)
        current = self.weighting.currentData()
        self.weighting.blockSignals(True)
        self.weighting.clear()
        table = weightings()
        for name in names:
            self.weighting.addItem(table[name].label, name)
            self.weighting.setItemData(self.weighting.count() - 1, table[name].source, Qt.ItemDataRole.ToolTipRole)
        index = self.weighting.findData(current)
        self.weighting.setCurrentIndex(index if index >= 0 else 0)
        self.weighting.blockSignals(False)

    def _axis(self, schedule) -> np.ndarray:
        lo, hi = plot_range(schedule)
        return np.linspace(lo, hi, GRID_POINTS)

    def update_density(self) -> None:
        p = self.plots
        entries = self.state.schedules
        p._match(p._density_items, p.density, len(entries))
        p.density_legend.clear()
        for item, entry in zip(p._density_items, entries):
            d = log_snr_density(entry.schedule, n=GRID_POINTS)
            pen = pg.mkPen(entry.color, width=2)
            if d.kind == "histogram" and d.edges is not None and len(d.edges) > 1:
                item.setData(d.edges, d.density, stepMode="center", pen=pen)
            else:
                item.setData(d.log_snr, d.density, stepMode=None, pen=pen)
            p.density_legend.addItem(item, entry.name)
        if entries:
            ranges = [plot_range(e.schedule) for e in entries]
            p.set_lambda_range(min(r[0] for r in ranges), max(r[1] for r in ranges))

    def update_weights(self) -> None:
        sched = self.selected_schedule()
        p = self.plots
        for item in p._weight_items.values():
            p.weight.removeItem(item)
        p._weight_items.clear()
        p.weight_legend.clear()
        if sched is None:
            return
        lam = self._axis(sched)
        for k, name in enumerate(default_weightings(sched)):
            w = get_weighting(name)
            y = normalised(w.weight(lam, sched), lam)
            item = p.weight.plot(lam, np.where(y > 0, y, np.nan), pen=pg.mkPen(WEIGHT_COLORS[k % len(WEIGHT_COLORS)], width=2),
                                 connect="finite")
            p._weight_items[name] = item
            p.weight_legend.addItem(item, w.label)

    def update_effective(self) -> None:
        p = self.plots
        entries = self.state.schedules
        p._match(p._effective_items, p.effective, len(entries))
        name = self.weighting.currentData()
        if name is None:
            return
        w = get_weighting(name)
        for k, (item, entry) in enumerate(zip(p._effective_items, entries)):
            lam = self._axis(entry.schedule)
            try:
                y = normalised(effective_weight(entry.schedule, w, lam), lam)
            except StudioError:
                y = np.full_like(lam, np.nan)
            width = 3 if k == self.selected else 1.5
            item.setData(lam, np.where(y > 0, y, np.nan), pen=pg.mkPen(entry.color, width=width), connect="finite")

    def update_grid(self) -> None:
        sched = self.selected_schedule()
        if sched is None:
            return
        grid = self.grid.currentData()
        steps = self.grid_steps.value()
        try:
            ticks = grid_ticks(sched, steps, grid=grid)
        except StudioError as e:
            self.plots.ticks.setData([], [])
            self.grid_label.setText(f"grid {grid}: {e}")
            return
        lam = np.clip(ticks.log_snr, -PLOT_LIMIT, PLOT_LIMIT)
        lam = lam[np.isfinite(lam)]
        top = max((float(np.nanmax(i.getData()[1])) for i in self.plots._density_items
                   if i.getData()[1] is not None and len(i.getData()[1])), default=1.0)
        h = 0.08 * top
        self.plots.ticks.setData(np.repeat(lam, 2), np.tile([0.0, h], len(lam)))
        self.grid_label.setText(f"{grid}, {steps} steps: largest λ jump {ticks.largest_jump:.3g} "
                                f"(step {ticks.largest_jump_at} → {ticks.largest_jump_at + 1})")
        self.ticks = ticks

    def update_bands(self) -> None:
        sched = self.selected_schedule()
        self.bands_label.setText("–" if sched is None else band_text(sched))

    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        import pyqtgraph.exporters

        exporter = pyqtgraph.exporters.ImageExporter(self.plots.ci)
        exporter.parameters()["width"] = width
        exporter.export(str(path))
        return Path(path)

    # --- a run's loss ------------------------------------------------------------------
    def set_run(self, path) -> None:
        self.run_dir = None if path is None else Path(path)
        self.update_loss()

    def update_loss(self) -> None:
        curve = self.plots.loss_curve
        if self.run_dir is None or not self.show_loss.isChecked():
            curve.setData([], [])
            self.loss_label.setText("no run open" if self.run_dir is None else "run loss hidden")
            return
        try:
            step, lam, loss = run_loss_by_level(self.run_dir)
        except (StudioError, OSError) as e:
            curve.setData([], [])
            self.loss_label.setText(f"run {self.run_dir.name}: {e}")
            return
        curve.setData(lam, loss)
        self.plots.loss_box.enableAutoRange(axis="y")
        self.loss_label.setText(f"run {self.run_dir.name}: loss by λ at step {step}" if len(lam)
                                else f"run {self.run_dir.name}: no loss by noise level logged yet")

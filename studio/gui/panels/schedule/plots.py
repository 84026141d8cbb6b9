"""The schedule editor's linked plots against t: log-SNR, SNR, beta, alpha_bar, sigma and
alpha. One curve item per schedule and plot, created once and updated with setData."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt, Signal

from studio.session import ScheduleEntry

from .control_points import ControlPointsItem
from .diagnostics import plot_curves

# plot key -> (title, log y axis)
PLOTS = {
    "log_snr": ("log-SNR  λ(t) = log α²/σ²", False),
    "snr": ("SNR(t) = α²/σ²  (log axis)", True),
    "beta": ("β_t per step  (log axis)", True),
    "alpha_bar": ("ᾱ_t = α_t²", False),
    "sigma": ("σ_t (solid), α_t (dashed)", False),
}


class SchedulePlots(pg.GraphicsLayoutWidget):
    """Plots of every schedule in ``entries``; ``hovered(t)`` follows the mouse.

    ``control_points`` lives on the log-SNR plot and is shown for a custom schedule.
    """

    hovered = Signal(float)

    def __init__(self, on_points_moved, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        # equal column widths: pyqtgraph lines up x-linked plots that overlap on screen,
        # so a plot spanning two columns would shift its neighbours' t ranges
        layout = [("log_snr", 0, 0, 2), ("snr", 0, 1, 1), ("alpha_bar", 1, 1, 1), ("beta", 0, 2, 1), ("sigma", 1, 2, 1)]
        for key, row, col, span in layout:
            title, log_y = PLOTS[key]
            p = self.addPlot(row=row, col=col, rowspan=span)
            p.setTitle(title, size="9pt")
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setLogMode(y=log_y)
            p.setLabel("bottom", "t")
            p.setMenuEnabled(False)
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            if self.plots:
                p.setXLink(self.plots["log_snr"])
            p.setXRange(0.0, 1.0, padding=0.02)
            cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888", style=Qt.PenStyle.DotLine))
            cursor.hide()
            p.addItem(cursor, ignoreBounds=True)
            p.cursor = cursor
            self.plots[key] = p
        # bottom left: log-SNR curves fall from top left to bottom right, so it stays clear
        self.legend = self.plots["log_snr"].addLegend(offset=(8, -8), labelTextColor="k",
                                                      brush=pg.mkBrush(255, 255, 255, 220))
        self.control_points = ControlPointsItem(on_points_moved)
        self.plots["log_snr"].addItem(self.control_points)
        self.control_points.hide()
        self._items: list[dict[str, pg.PlotDataItem]] = []
        self._curves: list[dict[str, np.ndarray]] = []
        self._sigma_log = False
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # --- entries -----------------------------------------------------------------------
    def set_entries(self, entries: list[ScheduleEntry]) -> None:
        """Match the curve items to the list (added / removed / renamed entries)."""
        while len(self._items) > len(entries):
            for key, item in self._items.pop().items():
                self.plots["sigma" if key == "alpha" else key].removeItem(item)
            self._curves.pop()
        while len(self._items) < len(entries):
            items = {key: self.plots[key].plot() for key in PLOTS}
            items["alpha"] = self.plots["sigma"].plot()
            self._items.append(items)
            self._curves.append({})
        self.legend.clear()
        for i, entry in enumerate(entries):
            self.update_entry(i, entry)
            self.legend.addItem(self._items[i]["log_snr"], entry.name)

    def update_entry(self, index: int, entry: ScheduleEntry) -> None:
        curves = plot_curves(entry.schedule)
        self._curves[index] = curves
        items = self._items[index]
        pen = pg.mkPen(entry.color, width=2)
        t = curves["t"]
        for key in ("log_snr", "snr", "alpha_bar", "sigma"):
            items[key].setData(t, curves[key], pen=pen, connect="finite")
        items["alpha"].setData(t, curves["alpha"], pen=pg.mkPen(entry.color, width=1.5, style=Qt.PenStyle.DashLine),
                               connect="finite")
        if "beta" in curves:
            items["beta"].setData(curves["t_beta"], curves["beta"], pen=pen, connect="finite")
        else:  # variance exploding: no betas
            items["beta"].setData([], [])
        self._update_sigma_axis()

    def _update_sigma_axis(self) -> None:
        # a VE schedule's sigma runs to sigma_max (50 by default) while alpha = 1 and VP
        # sigmas stay in [0, 1]: a log axis shows both
        ve = any(np.nanmax(c["sigma"]) > 1.5 for c in self._curves if c)
        if ve != self._sigma_log:
            self._sigma_log = ve
            self.plots["sigma"].setLogMode(y=ve)
            self.plots["sigma"].setTitle(PLOTS["sigma"][0] + ("  (log axis)" if ve else ""), size="9pt")
        for p in self.plots.values():
            p.enableAutoRange(axis="y")

    # --- custom schedule points -----------------------------------------------------
    def show_control_points(self, points: np.ndarray | None, color: str = "#000") -> None:
        if points is None:
            self.control_points.hide()
            return
        self.control_points.set_points(points, color)
        self.control_points.show()

    # --- hover -------------------------------------------------------------------------
    def _on_mouse_moved(self, pos) -> None:
        for p in self.plots.values():
            if p.vb.sceneBoundingRect().contains(pos):
                t = float(np.clip(p.vb.mapSceneToView(pos).x(), 0.0, 1.0))
                for q in self.plots.values():
                    q.cursor.setValue(t)
                    q.cursor.show()
                self.hovered.emit(t)
                return

    def values_at(self, index: int, t: float) -> dict[str, float]:
        """Every curve of entry ``index`` at ``t`` (linear interpolation), for the readout."""
        c = self._curves[index]
        out = {key: float(np.interp(t, c["t"], c[key])) for key in ("log_snr", "snr", "alpha_bar", "alpha", "sigma")}
        if "beta" in c:
            out["beta"] = float(np.interp(t, c["t_beta"], c["beta"]))
        return out

    def curve_data(self, index: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) drawn for entry ``index`` in plot ``key`` (tests and export read this)."""
        x, y = self._items[index][key].getData()
        return np.asarray(x), np.asarray(y)

    # --- export -----------------------------------------------------------------------
    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        path = Path(path)
        exporter = pyqtgraph.exporters.ImageExporter(self.ci)
        exporter.parameters()["width"] = width
        exporter.export(str(path))
        return path

"""A 2-D point cloud in one ``ScatterPlotItem`` (created once, updated with setData)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class ScatterView(pg.PlotWidget):
    """Shows ``(N, 2)`` points (extra columns ignored) with equal axis scales."""

    def __init__(self, parent=None, size: float = 3.0, color: str = "#0072B2", title: str | None = None):
        super().__init__(parent, background="w")
        self.plot_item = self.getPlotItem()
        self.plot_item.setAspectLocked(True)
        self.plot_item.showGrid(x=True, y=True, alpha=0.2)
        self.plot_item.setMenuEnabled(False)
        if title:
            self.plot_item.setTitle(title, size="9pt")
        self.scatter = pg.ScatterPlotItem(size=size, pen=None, brush=pg.mkBrush(color + "aa"))
        self.plot_item.addItem(self.scatter)

    def set_points(self, points: np.ndarray, autorange: bool = True) -> None:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] < 2:
            self.scatter.clear()
            return
        self.scatter.setData(pos=points[:, :2])
        if autorange:
            self.plot_item.autoRange(padding=0.05)

    def set_range(self, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
        self.plot_item.setRange(xRange=(xmin, xmax), yRange=(ymin, ymax), padding=0.02)

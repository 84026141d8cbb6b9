"""The selected runs' curves overlaid, one colour per run: loss (TensorBoard-style
smoothing, the raw loss faint behind it), loss by noise level at the latest step,
gradient norm, learning rate and throughput, against step, training time or samples
seen. The legend names each run by the settings in which the selected runs differ."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtGui import QColor

from studio.engine.run_index import CurveData, tensorboard_smooth

PLOTS = ("loss", "levels", "grad_norm", "lr", "throughput")
AXIS_LABELS = {"step": "step", "time": "training time (s)", "samples": "samples seen"}
LEVEL_BINS = 32


@dataclass(frozen=True)
class Overlay:
    path: Path
    label: str
    color: str
    data: CurveData


def level_edges(overlays: list[Overlay], bins: int = LEVEL_BINS) -> np.ndarray:
    """Common log-SNR bins over every selected run's pairs (so the curves compare)."""
    pairs = [o.data.level_log_snr[np.isfinite(o.data.level_log_snr)] for o in overlays]
    pairs = [p for p in pairs if len(p)]
    if not pairs:
        return np.linspace(-10.0, 10.0, bins + 1)
    lo, hi = min(float(p.min()) for p in pairs), max(float(p.max()) for p in pairs)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)


class RunOverlays(pg.GraphicsLayoutWidget):
    """``show_runs(overlays)`` draws them; ``axis`` and ``smoothing`` say how."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.axis, self.smoothing = "step", 0.6
        self.overlays: list[Overlay] = []
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, list[pg.PlotDataItem]] = {k: [] for k in (*PLOTS, "loss_raw")}
        layout = [  # key, title, row, col, colspan
            ("loss", "loss (smoothed; raw faint)", 0, 0, 2),
            ("levels", "loss by noise level (latest)", 0, 2, 1),
            ("grad_norm", "gradient norm", 1, 0, 1),
            ("lr", "learning rate", 1, 1, 1),
            ("throughput", "samples / s", 1, 2, 1),
        ]
        for key, title, row, col, span in layout:
            p = self.addPlot(row=row, col=col, colspan=span)
            p.setTitle(title, size="9pt")
            p.setMenuEnabled(False)
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            p.getAxis("left").setWidth(52)
            p.showGrid(x=True, y=True, alpha=0.15)
            self.plots[key] = p
        self.plots["levels"].setLabel("bottom", "log-SNR λ")
        self.legend = self.plots["loss"].addLegend(offset=(-10, 10), labelTextSize="9pt")
        self._label_axes()

    def _label_axes(self) -> None:
        for key in ("loss", "grad_norm", "lr", "throughput"):
            self.plots[key].setLabel("bottom", AXIS_LABELS[self.axis])

    def set_axis(self, axis: str) -> None:
        self.axis = axis
        self._label_axes()
        self.redraw()

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        self.redraw()

    def show_runs(self, overlays: list[Overlay]) -> None:
        self.overlays = list(overlays)
        self.redraw()

    def _curve(self, key: str, i: int, plot: str | None = None) -> pg.PlotDataItem:
        """The i-th curve of ``key`` (made once, reused while the selection grows)."""
        items = self.curves[key]
        while len(items) <= i:
            items.append(self.plots[plot or key].plot([], []))
        return items[i]

    def redraw(self) -> None:
        overlays, axis = self.overlays, self.axis
        self.legend.clear()
        edges = level_edges(overlays)
        for i, o in enumerate(overlays):
            d, color = o.data, QColor(o.color)
            faint = QColor(color)
            faint.setAlpha(60)
            x = d.x(axis)
            raw = self._curve("loss_raw", i, "loss")
            raw.setData(x, d.loss)
            raw.setPen(pg.mkPen(faint, width=1))
            smooth = self._curve("loss", i)
            smooth.setData(x, tensorboard_smooth(d.loss, self.smoothing))
            smooth.setPen(pg.mkPen(color, width=2))
            self.legend.addItem(smooth, o.label)
            for key, y in (("grad_norm", d.grad_norm), ("lr", d.lr)):
                c = self._curve(key, i)
                c.setData(x, y)
                c.setPen(pg.mkPen(color, width=1.5))
            c = self._curve("throughput", i)
            c.setData(*d.throughput(axis))
            c.setPen(pg.mkPen(color, width=1.5))
            c = self._curve("levels", i)
            c.setData(*d.levels(edges))
            c.setPen(pg.mkPen(color, width=2))
            c.setSymbol("o")
            c.setSymbolSize(4)
            c.setSymbolBrush(color)
            c.setSymbolPen(None)
        for items in self.curves.values():
            for c in items[len(overlays):]:
                c.setData([], [])
        for p in self.plots.values():
            p.enableAutoRange()

    def curve_data(self, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of each curve of ``key``, all its points (``getData`` would give the
        downsampled ones drawn)."""
        return [(c.xData, c.yData) for c in self.curves[key][: len(self.overlays)]]

    def legend_labels(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    def export_png(self, path: Path) -> Path:
        pg.exporters.ImageExporter(self.scene()).export(str(path))
        return path

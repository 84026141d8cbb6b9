"""The training monitor's plots, drawn from a ``TrainingHistory`` at display rate.

Items are created once; ``refresh()`` (called by the panel's timer, not per event) hands
each curve its buffer view with one ``setData`` and the heatmap one
``setImage(autoLevels=False)``. Long curves are downsampled by pyqtgraph (peak mode,
clipped to view: docs/PITFALLS.md), so a long run costs a frame what a short one does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt

from .buffers import TrainingHistory

STEP_PLOTS = ("loss", "heatmap", "grad_norm", "lr", "samples_per_s", "memory", "utilization")
BLUE, ORANGE, GREEN, PURPLE, GREY = "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#999999"


class TrainingPlots(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._order = ["loss", "levels", "heatmap", "grad_norm", "lr", "samples_per_s", "memory", "utilization"]
        self._drawn: dict[str, int] = {}  # plot group -> history version drawn
        self._next = 0
        self.draws = 0  # plot updates so far (the benchmark reports it)
        self._total = -1
        self.bin_by = "log_snr"  # loss by noise level binned by log-SNR or by t (set_bin_by)
        # no x links: pyqtgraph aligns linked plots by their on-screen overlap, which
        # shifts the step ranges of plots in different columns; each autoranges instead
        layout = [  # key, title, row, col, colspan, x label, log y
            ("loss", "loss: raw (grey), smoothed", 0, 0, 2, "step", False),
            ("levels", "loss by noise level (recent)", 0, 2, 1, "log-SNR λ", False),
            ("heatmap", "log₁₀ loss by noise level over training", 1, 0, 2, "step", False),
            ("schedule", "schedule λ(t)", 1, 2, 1, "t", False),
            ("grad_norm", "gradient norm", 2, 0, 1, "step", False),
            ("lr", "learning rate", 2, 1, 1, "step", False),
            ("samples_per_s", "samples / s", 2, 2, 1, "step", False),
            ("memory", "memory (MB)", 3, 0, 1, "step", False),
            ("utilization", "CPU %", 3, 1, 1, "step", False),
        ]
        for key, title, row, col, span, xlabel, log_y in layout:
            p = self.addPlot(row=row, col=col, colspan=span)
            p.setTitle(title, size="9pt")
            p.setLabel("bottom", xlabel)
            p.setLogMode(y=log_y)
            p.setMenuEnabled(False)
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            # a fixed axis width: otherwise a tick label growing by a digit re-lays the
            # whole grid out and every plot repaints, not just the one that changed
            p.getAxis("left").setWidth(52)
            self.plots[key] = p

        pen = lambda color, width=1.5, **kw: pg.mkPen(color, width=width, **kw)  # noqa: E731
        plain = {"antialias": False}  # antialiased raster curves cost several times more to paint
        self.curves["loss"] = self.plots["loss"].plot(pen=pen(GREY, 1), **plain)
        self.curves["loss_smooth"] = self.plots["loss"].plot(pen=pen(BLUE, 2), **plain)
        self.curves["levels"] = self.plots["levels"].plot(pen=pen(BLUE), symbol="o", symbolSize=4,
                                                          symbolBrush=BLUE, connect="finite")
        self.curves["grad_norm"] = self.plots["grad_norm"].plot(pen=pen(ORANGE), **plain)
        self.curves["lr"] = self.plots["lr"].plot(pen=pen(GREEN), **plain)
        self.curves["samples_per_s"] = self.plots["samples_per_s"].plot(pen=pen(PURPLE), **plain)
        self.curves["memory"] = self.plots["memory"].plot(pen=pen(BLUE), **plain)
        self.curves["memory_peak"] = self.plots["memory"].plot(pen=pen(ORANGE, style=Qt.PenStyle.DashLine), **plain)
        self.curves["utilization"] = self.plots["utilization"].plot(pen=pen(GREEN), **plain)
        self.schedule_start = self.plots["schedule"].plot(pen=pen(GREY, 1, style=Qt.PenStyle.DashLine))
        self.schedule_now = self.plots["schedule"].plot(pen=pen(BLUE, 2))
        self.plots["schedule"].setXRange(0.0, 1.0, padding=0.02)
        self.plots["levels"].setXRange(-16.0, 16.0, padding=0.02)  # the heatmap's bins

        self.heatmap = pg.ImageItem(axisOrder="col-major")
        self.heatmap.setColorMap(pg.colormap.get("viridis"))
        self.plots["heatmap"].addItem(self.heatmap)
        self.plots["heatmap"].setLabel("left", "log-SNR λ")
        self.heatmap_bar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, width=10)
        self.heatmap_bar.setImageItem(self.heatmap, insert_in=self.plots["heatmap"])

    # --- drawing -------------------------------------------------------------------------------
    def refresh(self, history: TrainingHistory, force: bool = False, limit: int | None = None) -> bool:
        """Redraw the plots whose data changed since they were last drawn; at most
        ``limit`` of them (round robin), or all with ``force``. True if any was drawn.

        The panel's timer draws one plot a tick: repainting all nine (axes, tick text,
        curves) took ~80 ms of the GUI thread, so a tick that drew them all made every
        other timer late by that much; one plot a tick keeps each paint to a few ms
        (the view repaints only the changed plot's region) and each plot still updates
        a few times a second."""
        if history.total != self._total:
            self._total = history.total
            self.set_steps(history.total)
        stale = [g for g in self._order if force or self._drawn.get(g) != history.version]
        if not stale:
            return False
        if limit is not None and not force:
            start = self._next % len(self._order)
            stale.sort(key=lambda g: (self._order.index(g) - start) % len(self._order))
            stale = stale[:limit]
            self._next = self._order.index(stale[-1]) + 1
        for group in stale:
            self._draw(group, history)
            self._drawn[group] = history.version
        return True

    def set_steps(self, total: int) -> None:
        """Fix the step axes to the run's length: a fixed x range spares regenerating the
        x axis (tick text) on every update, and shows how far the run has come."""
        for key in STEP_PLOTS:
            if total > 0:
                self.plots[key].setXRange(0, total, padding=0.01)
            else:
                self.plots[key].enableAutoRange(x=True)

    def _draw(self, group: str, history: TrainingHistory) -> None:
        self.draws += 1
        gpu = history.memory_kind == "cuda"
        if group == "levels":
            levels = self._levels(history)
            seen = np.isfinite(levels.curve)
            self.curves["levels"].setData(levels.centers[seen], levels.curve[seen])
        elif group == "heatmap":
            self._draw_heatmap(history)
        elif group == "memory":
            for key in ("memory", "memory_peak"):
                self.curves[key].setData(history.series[key].x, history.series[key].y)
            self._title("memory", "CUDA memory (MB): allocated, peak (dashed)" if gpu else "process RAM (MB)")
        elif group == "utilization":
            self.curves["utilization"].setData(history.series["utilization"].x, history.series["utilization"].y)
            self._title("utilization", "GPU utilisation %" if gpu else "CPU %")
        elif group == "loss":
            for key in ("loss", "loss_smooth"):
                self.curves[key].setData(history.series[key].x, history.series[key].y)
        else:
            self.curves[group].setData(history.series[group].x, history.series[group].y)

    def _title(self, key: str, text: str) -> None:
        if self.plots[key].titleLabel.text != text:  # a new title text re-lays the grid out
            self.plots[key].setTitle(text, size="9pt")

    def _levels(self, history: TrainingHistory):
        return history.levels_t if self.bin_by == "t" else history.levels

    def set_bin_by(self, kind: str) -> None:
        """Bin loss by noise level by ``"log_snr"`` or by ``"t"`` (curve and heatmap)."""
        if kind not in ("log_snr", "t"):
            raise ValueError(f"bin by {kind!r}: allowed log_snr, t")
        self.bin_by = kind
        label = "t" if kind == "t" else "log-SNR λ"
        self.plots["levels"].setLabel("bottom", label)
        self.plots["heatmap"].setLabel("left", label)
        lo, hi = (0.0, 1.0) if kind == "t" else (-16.0, 16.0)  # the bins' range
        self.plots["levels"].setXRange(lo, hi, padding=0.02)
        for group in ("levels", "heatmap"):
            self._drawn.pop(group, None)  # redrawn at the next tick

    def _draw_heatmap(self, history: TrainingHistory) -> None:
        levels = self._levels(history)
        image = levels.image()
        if image.size and np.isfinite(image).any():
            lo, hi = np.nanpercentile(image, [2, 98])
            hi = hi if hi > lo else lo + 1e-3
            self.heatmap.setImage(image, autoLevels=False, levels=(lo, hi))
            self.heatmap.setRect(0.0, float(levels.edges[0]), float(levels.used * levels.span),
                                 float(levels.edges[-1] - levels.edges[0]))
            self.heatmap_bar.setLevels((lo, hi))
        else:
            self.heatmap.clear()

    def set_schedule(self, t: np.ndarray | None, log_snr: np.ndarray | None, initial: bool = False) -> None:
        """The run's log-SNR curve; ``initial`` also draws it as the dashed start curve
        (a learned VDM schedule then shows how far it moved)."""
        if t is None:
            self.schedule_now.setData([], [])
            self.schedule_start.setData([], [])
            return
        self.schedule_now.setData(t, log_snr)
        if initial:
            self.schedule_start.setData(t, log_snr)

    def has_data(self) -> bool:
        x = self.curves["loss_smooth"].xData
        return x is not None and len(x) > 0

    def export_png(self, path: str | Path) -> Path:
        exporter = pyqtgraph.exporters.ImageExporter(self.scene())
        exporter.parameters()["width"] = max(800, self.width())
        exporter.export(str(path))
        return Path(path)

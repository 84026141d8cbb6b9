"""Forward-process preview: the loaded data noised to several t with the SAME noise, so
the eye follows one sample as t grows, plus a larger view at the slider's t.

Shown scaled by ``input_scale = 1 / sqrt(alpha^2 + sigma^2)`` (what the network sees),
so a variance-exploding schedule with sigma up to 50 stays on the same scale as a
variance-preserving one.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSlider, QStackedWidget, QVBoxLayout, QWidget

from studio.core.parameterization import input_scale, q_sample
from studio.core.schedules import Schedule
from studio.gui.widgets import ImageGridView

STRIP_T = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
N_IMAGES = 4  # rows of the image strip
N_FOCUS_IMAGES = 16
N_POINTS = 600
POINT_RANGE = 3.5  # standardised points (and their noised versions) fit in +-3.5
SLIDER_STEPS = 1000


class ForwardPreview(QWidget):
    """``set_dataset`` / ``set_schedule`` feed it; redraws are coalesced by a timer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.dataset = None
        self.schedule: Schedule | None = None
        self._x0 = self._eps = None

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setValue(SLIDER_STEPS // 2)
        self.slider.setToolTip("t of the larger view (left); the strip shows fixed t")
        self.t_label = QLabel()
        # long readout must not widen the dock: it is cut, not the window stretched
        self.t_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.empty = QLabel("Load data in the Data panel to see it noised here.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # images: a focus grid and a strip (rows = samples, columns = t), one item each
        self.focus_images = ImageGridView(columns=4)
        self.strip_images = ImageGridView(columns=len(STRIP_T))
        # points: a focus scatter and one small scatter per strip t, created once
        self.points_view = pg.GraphicsLayoutWidget()
        self.points_view.setBackground("w")
        self.focus_scatter, self.strip_scatters = self._build_point_plots()

        images = QWidget()
        row = QHBoxLayout(images)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.focus_images, 1)
        row.addWidget(self.strip_images, 3)
        self.stack = QStackedWidget()
        for w in (self.empty, images, self.points_view):
            self.stack.addWidget(w)
        self._images_page = images

        top = QHBoxLayout()
        top.addWidget(QLabel("t"))
        top.addWidget(self.slider, 2)
        top.addWidget(self.t_label, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)

        self._timer = QTimer(self, singleShot=True, interval=30)  # coalesce slider ticks
        self._timer.timeout.connect(self.redraw)
        self.slider.valueChanged.connect(self._schedule_redraw)

    def _schedule_redraw(self, *_) -> None:
        # not valueChanged -> QTimer.start directly: the slider value would become the delay
        self._timer.start()

    def _build_point_plots(self):
        def small(plot, title):
            plot.setTitle(title, size="8pt")
            plot.setAspectLocked(True)
            plot.setRange(xRange=(-POINT_RANGE, POINT_RANGE), yRange=(-POINT_RANGE, POINT_RANGE), padding=0)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setStyle(showValues=False)
                plot.getAxis(axis).setTicks([[(0, "")]])
            plot.showGrid(x=True, y=True, alpha=0.3)
            item = pg.ScatterPlotItem(size=2.5, pen=None, brush=pg.mkBrush(0, 114, 178, 150))
            plot.addItem(item)
            return plot, item

        focus = small(self.points_view.addPlot(row=0, col=0, rowspan=2), "t = ")
        strip = []
        cols = (len(STRIP_T) + 1) // 2
        for k, t in enumerate(STRIP_T):
            r, c = divmod(k, cols)
            strip.append(small(self.points_view.addPlot(row=r, col=1 + c), f"t = {t:g}"))
        self.points_view.ci.layout.setColumnStretchFactor(0, 2)
        return focus, strip

    @property
    def t(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_t(self, t: float) -> None:
        self.slider.setValue(int(round(t * SLIDER_STEPS)))

    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        self._x0 = self._eps = None
        if dataset is not None and len(dataset):
            n = N_POINTS if dataset.kind == "points" else N_FOCUS_IMAGES
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(len(dataset), generator=g)[:n]
            self._x0 = dataset.data[idx].double()
            # one noise draw for every t: the same sample is followed across the strip
            self._eps = torch.randn(self._x0.shape, generator=g, dtype=torch.float64)
        self._timer.start()

    def set_schedule(self, schedule: Schedule | None) -> None:
        self.schedule = schedule
        self._timer.start()

    def noised(self, t: float | list[float]) -> torch.Tensor:
        """x_t of the preview samples at each t, scaled by input_scale: (len(t), n, ...)."""
        ts = torch.tensor(np.atleast_1d(t), dtype=torch.float64)
        with torch.no_grad():
            alpha, sigma = self.schedule.alpha_sigma(ts)
        alpha, sigma = alpha.double(), sigma.double()
        shape = (-1,) + (1,) * self._x0.dim()
        scale = input_scale(alpha, sigma).reshape(shape)
        x = q_sample(self._x0[None], self._eps[None], alpha.reshape(shape), sigma.reshape(shape))
        return x * scale

    def redraw(self) -> None:
        if self._x0 is None or self.schedule is None:
            self.stack.setCurrentWidget(self.empty)
            self.t_label.setText("")
            return
        t = self.t
        with torch.no_grad():
            a, s = self.schedule.alpha_sigma(torch.tensor([t], dtype=torch.float64))
        a, s = float(a), float(s)
        snr = a * a / (s * s) if s > 0 else float("inf")
        self.t_label.setText(f"t = {t:.3f}   α = {a:.4g}   σ = {s:.4g}   SNR = {snr:.3g}")
        if self.dataset.kind == "images":
            self._draw_images(t)
        else:
            self._draw_points(t)

    def _draw_images(self, t: float) -> None:
        self.stack.setCurrentWidget(self._images_page)
        focus = self.noised(t)[0].float()
        self.focus_images.set_images(self.dataset.to_uint8(focus), titles=None)
        strip = self.noised(list(STRIP_T))[:, :N_IMAGES].float()  # (T, n, C, H, W)
        rows = strip.transpose(0, 1).reshape(-1, *strip.shape[2:])  # row-major: sample, then t
        self.strip_images.set_images(self.dataset.to_uint8(rows), titles=[f"t={v:g}" for v in STRIP_T])

    def _draw_points(self, t: float) -> None:
        self.stack.setCurrentWidget(self.points_view)
        plot, item = self.focus_scatter
        plot.setTitle(f"t = {t:.3f}", size="9pt")
        item.setData(pos=self.noised(t)[0, :, :2].numpy())
        strip = self.noised(list(STRIP_T))[:, :, :2].numpy()
        for (_, scatter), pts in zip(self.strip_scatters, strip):
            scatter.setData(pos=pts)

"""The viewer's timeline: a slider over every recorded step, play/pause with a speed,
the keyboard (Left/Right, PageUp/PageDown, Home/End, Space), and beside it the
schedule's log-SNR and per-step statistics, each with the current step marked by a
line that can be dragged to scrub."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QGraphicsItem, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.core.networks.embedding import clamp_log_snr

from .data import STAT_TITLES, STATS

SPEEDS = (5, 15, 30, 60, 120, 240, 480)  # steps per second
FRAME_MS = 16  # the play timer never ticks faster than the display
NAV_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp,
            Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End}


class Timeline(QWidget):
    """``step_changed(int)`` whenever the current step changes (slider, keys, play,
    dragging a marker). ``set_count(n)`` grows it while a trajectory is written."""

    step_changed = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(10)
        self.slider.setToolTip("Step (Left/Right, PageUp/PageDown, Home/End; Space plays)")
        self.setFocusProxy(self.slider)
        self.play_button = QToolButton()
        self.play_button.setCheckable(True)
        self.play_button.setText("▶")
        self.play_button.setToolTip("Play / pause (Space)")
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"{s} steps/s", s)
        self.speed.setCurrentIndex(SPEEDS.index(60))
        self.speed.setToolTip("Playback speed")
        self.label = QLabel()
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(200)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(150)
        self.plots.setMaximumHeight(190)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.markers: list[pg.InfiniteLine] = []
        for col, (key, title) in enumerate((("log_snr", "log-SNR λ"), *STAT_TITLES.items())):
            plot = self.plots.addPlot(row=0, col=col)
            plot.setTitle(title, size="8pt")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("bottom").setStyle(tickFont=_small_font())
            plot.getAxis("left").setStyle(tickFont=_small_font())
            plot.getAxis("left").setWidth(34)
            # moving the marker repaints the plot under it: axes and curves come from
            # pixmap caches then (axis text drawing was 2 ms a plot per step)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            if key == "norm_score":
                plot.setLogMode(y=True)  # spans decades as sigma shrinks
                self.score_axis = plot.getAxis("left")
            curve = plot.plot(pen=pg.mkPen("#0072B2", width=1.5), connect="finite")
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            curve.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.curves[key] = curve
            marker = pg.InfiniteLine(0, angle=90, movable=True, pen=pg.mkPen("#D55E00", width=1.5))
            marker.setToolTip("Drag to scrub")
            marker.sigPositionChanged.connect(self._marker_moved)
            plot.addItem(marker)
            self.markers.append(marker)

        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.speed)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plots)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self.play_button.toggled.connect(self.set_playing)
        self.speed.currentIndexChanged.connect(lambda _: self._apply_speed())
        self.slider.valueChanged.connect(self._value_changed)
        self._apply_speed()

    # --- state ---------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.slider.value()

    @property
    def count(self) -> int:
        return self.slider.maximum() + 1 if self._has_steps else 0

    _has_steps = False

    def set_step(self, i: int) -> None:
        self.slider.setValue(int(i))

    def set_count(self, n: int, follow: bool = False) -> None:
        """``n`` steps can be shown; ``follow`` moves to the newest one (while sampling,
        when the user has not scrubbed away from the end)."""
        was_at_end = self.step == self.slider.maximum()
        self._has_steps = n > 0
        self.slider.setRange(0, max(0, n - 1))
        if n > 0 and follow and was_at_end:
            self.slider.setValue(n - 1)

    def set_span(self, total: int) -> None:
        """Fix the plots' step axis to the whole trajectory (``total`` steps): growing
        curves then leave the axes alone, instead of re-laying and repainting the four
        plots' axes on every poll while sampling."""
        for curve in self.curves.values():
            view = curve.getViewBox()
            if view is not None:
                view.enableAutoRange(x=False)
                view.setXRange(0, max(1, total - 1), padding=0.02)

    def set_curves(self, log_snr: np.ndarray, stats: dict[str, list[float]]) -> None:
        x = np.arange(len(log_snr), dtype=np.float64)
        # +-inf at the ends of some schedules: drawn where the nets clamp it
        self.curves["log_snr"].setData(x, clamp_log_snr(np.asarray(log_snr, dtype=np.float64)).numpy())
        for key in STATS:
            y = np.asarray(stats[key], dtype=np.float64)
            if key == "norm_score":
                y = np.where(y > 0, y, np.nan)  # log axis
                self._label_decades(y)
            self.curves[key].setData(x[: len(y)], y)

    def _label_decades(self, y: np.ndarray) -> None:
        """The log axis of ||score||: over a decade or more, labels at the decades only
        (pyqtgraph labels every 2..9 minor tick of a one-decade range, overlapping in a
        small plot); within one, pyqtgraph's own ticks (a decade label may be off the view)."""
        axis = self.score_axis
        finite = y[np.isfinite(y)]
        if finite.size and np.log10(finite.max() / finite.min()) >= 0.8:
            axis.setTickSpacing(levels=[(1.0, 0.0)])
            axis.setStyle(maxTextLevel=0)
        else:
            axis.setTickSpacing()
            axis.setStyle(maxTextLevel=2)

    def set_label(self, text: str) -> None:
        self.label.setText(text)

    def clear(self) -> None:
        self.set_playing(False)
        self._has_steps = False
        self.slider.setRange(0, 0)
        for curve in self.curves.values():
            curve.setData([], [])
        self.label.setText("")

    # --- play ----------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def set_playing(self, on: bool) -> None:
        if on and self.count > 1:
            if self.step >= self.slider.maximum():
                self.slider.setValue(0)  # play again from the start
            self._timer.start()
        else:
            self._timer.stop()
        self.play_button.blockSignals(True)
        self.play_button.setChecked(self.playing)
        self.play_button.setText("⏸" if self.playing else "▶")
        self.play_button.blockSignals(False)

    def toggle_play(self) -> None:
        self.set_playing(not self.playing)

    def _apply_speed(self) -> None:
        speed = self.speed.currentData()
        self._interval = max(FRAME_MS, int(1000 / speed))
        self._stride = max(1, round(speed * self._interval / 1000))
        self._timer.setInterval(self._interval)

    def _tick(self) -> None:
        if self.step >= self.slider.maximum():
            self.set_playing(False)
            return
        self.slider.setValue(min(self.slider.maximum(), self.step + self._stride))

    # --- input ---------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.key() == Qt.Key.Key_Space:
            self.toggle_play()
        elif event.key() in NAV_KEYS:
            self.slider.event(event)  # the slider's own stepping (PageUp: +pageStep ...)
        else:
            super().keyPressEvent(event)

    def _value_changed(self, i: int) -> None:
        for m in self.markers:
            m.blockSignals(True)
            m.setValue(i)
            m.blockSignals(False)
        self.step_changed.emit(i)

    def _marker_moved(self, marker: pg.InfiniteLine) -> None:
        self.slider.setValue(int(round(marker.value())))


def _small_font():
    from PySide6.QtGui import QFont

    font = QFont()
    font.setPointSize(7)
    return font

"""Draggable control points of a custom log-SNR curve (after pyqtgraph's CustomGraphItem
example), kept monotone while dragging: each point is clamped between its neighbours."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from studio.core.networks.embedding import LOG_SNR_CLAMP

MIN_DT = 1e-3  # smallest t gap between neighbouring points
MIN_DLAM = 1e-2  # smallest log-SNR drop between neighbouring points (strictly decreasing)
LAM_LIMIT = LOG_SNR_CLAMP  # |log-SNR| beyond this is numerically 0 or 1 in alpha^2 (the nets' clamp)


def clamp_point(points: np.ndarray, index: int, t: float, lam: float) -> tuple[float, float]:
    """Where point ``index`` may go when dragged to ``(t, lam)``: the end points stay at
    t = 0 and t = 1, every point stays strictly between its neighbours in t and log-SNR
    (log-SNR decreasing in t)."""
    n = len(points)
    if index == 0:
        t = 0.0
    elif index == n - 1:
        t = 1.0
    else:
        t = float(np.clip(t, points[index - 1, 0] + MIN_DT, points[index + 1, 0] - MIN_DT))
    hi = points[index - 1, 1] - MIN_DLAM if index > 0 else LAM_LIMIT
    lo = points[index + 1, 1] + MIN_DLAM if index < n - 1 else -LAM_LIMIT
    return t, float(np.clip(lam, lo, hi))


class ControlPointsItem(pg.ScatterPlotItem):
    """Points ``(t, log_snr)`` the user drags; ``on_moved(points)`` is called with the new
    ``(K, 2)`` array on every drag step (the editor rebuilds the schedule live)."""

    def __init__(self, on_moved: Callable[[np.ndarray], None]):
        super().__init__(size=11, pen=pg.mkPen("k", width=1.5), brush=pg.mkBrush("w"), hoverable=True,
                         hoverSize=14, tip=None)
        self.setZValue(10)
        self.positions = np.zeros((0, 2))
        self._on_moved = on_moved
        self._drag_index: int | None = None
        self._drag_offset = np.zeros(2)

    def set_points(self, points: np.ndarray, color: str = "#000000") -> None:
        self.positions = np.array(points, dtype=np.float64).reshape(-1, 2)
        self.setData(pos=self.positions, data=np.arange(len(self.positions)), brush=pg.mkBrush(color))

    def move_point(self, index: int, t: float, lam: float) -> None:
        """Move one point (clamped to stay monotone) and report the new points."""
        self.positions[index] = clamp_point(self.positions, index, t, lam)
        self.setData(pos=self.positions, data=np.arange(len(self.positions)))
        self._on_moved(self.positions.copy())

    def index_at(self, pos) -> int | None:
        spots = self.pointsAt(pos)
        return int(spots[0].data()) if len(spots) else None

    def mouseDragEvent(self, ev):  # noqa: N802 - Qt naming
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        if ev.isStart():
            index = self.index_at(ev.buttonDownPos())
            if index is None:
                ev.ignore()  # let the view pan
                return
            self._drag_index = index
            p = ev.buttonDownPos()
            self._drag_offset = self.positions[index] - np.array([p.x(), p.y()])
        elif self._drag_index is None:
            ev.ignore()
            return
        ev.accept()
        p = ev.pos()
        t, lam = np.array([p.x(), p.y()]) + self._drag_offset
        self.move_point(self._drag_index, t, lam)
        if ev.isFinish():
            self._drag_index = None

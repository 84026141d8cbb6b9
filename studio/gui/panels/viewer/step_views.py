"""What the viewer shows of one step.

Images: x_t, predicted x0 and predicted noise side by side (and the score for NCSN),
each one ``ImageGridView`` (one uint8 mosaic, docs/PITFALLS.md). Showing a step is one chunk
read per view and one ``setImage``.

2-D data: one plot with x_t, the predicted x0 (faint), the paths of a few particles up
to the current step, and the learned score at the current noise level as a vector
field, drawn as one line item with ``connect="pairs"``. The field is the network's:
it is evaluated on a worker thread (``field.score_fields``, a batch of steps a call) and
kept per step, so a scrub only draws. Lines are drawn without antialiasing and the
axes (with their grid) are cached as pixmaps: antialiased raster paths and grid took
~30 of the ~45 ms a scrub painted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget
from superqt.utils import create_worker

from studio.engine.export import as_uint8_nhwc, plot_bounds
from studio.gui.widgets import ImageGridView, ScatterView

from .data import score_from_eps
from .field import Field, score_fields

MAX_IMAGES = 64  # shown per view (an 8x8 grid); exports take every sample
EPS_RANGE = 3.0  # noise shown from -3 to 3 (standard normal units)
FIELD_BATCH = 32  # steps whose field one worker call evaluates (the asked one first, then its neighbours)
FIELD_CACHE = 4096  # steps' fields kept (a 1000-step trajectory: ~10 MB)
VIEW_TITLES = {"x_t": "x_t", "x0_hat": "predicted x₀", "eps_hat": "predicted noise ε", "score": "score (scaled per step)"}


# --- float arrays -> uint8 images, as shown ------------------------------------------------
def _pixels(a: np.ndarray, view: str) -> np.ndarray:
    """The float formula of a view: values in [0, 1] before ``as_uint8_nhwc``."""
    if view == "eps_hat":
        return 0.5 + np.asarray(a, dtype=np.float32) / np.float32(2 * EPS_RANGE)
    return a


def _float16_table(view: str) -> np.ndarray:
    """uint8 of every float16 bit pattern under the view's formula, so a stored float16
    step becomes pixels with one gather (65536 entries, built once) instead of a chain of
    float32 passes (4 ms -> 0.5 ms for 64 x 3x32x32); the same formula, so the same bytes."""
    values = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    with np.errstate(invalid="ignore"):
        return as_uint8_nhwc(_pixels(values, view)[:, None, None, None])[:, 0, 0, 0]


_TABLES = {view: _float16_table(view) for view in ("x_t", "x0_hat", "eps_hat")}


def display_images(step: dict[str, Any], view: str) -> np.ndarray:
    """uint8 (N, H, W, C) of one view of a step (at most MAX_IMAGES): x_t and x0_hat are
    in the data's raw scale [0, 1]; noise maps [-3, 3] to [0, 1]; the score, whose
    size spans decades along the process, is scaled by 3 times its RMS."""
    if view == "score":
        s = score_from_eps(step["eps_hat"][:MAX_IMAGES], step["sigma"])
        return as_uint8_nhwc(0.5 + s / (6.0 * max(float(np.sqrt(np.mean(s * s))), 1e-12)))
    a = step[view][:MAX_IMAGES]
    if a.dtype == np.float16 and a.ndim == 4:  # as stored: the table
        return np.moveaxis(_TABLES[view][a.view(np.uint16)], 1, -1)
    return as_uint8_nhwc(_pixels(a, view))


def titled(widget: QWidget, title: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(1)
    label = QLabel(title)
    label.setStyleSheet("font-weight: 600;")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box


class ImageStepViews(QWidget):
    """``show_step(step)``; ``views`` maps a view name to its ``ImageGridView``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.views: dict[str, ImageGridView] = {}
        self._boxes: dict[str, QWidget] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for name, title in VIEW_TITLES.items():
            view = ImageGridView()
            view.setMinimumSize(160, 160)
            self.views[name] = view
            self._boxes[name] = titled(view, title)
            layout.addWidget(self._boxes[name], 1)
        self.set_score_visible(False)

    def set_score_visible(self, on: bool) -> None:
        """The score view is NCSN's (its net is read as a score); others show eps."""
        self._boxes["score"].setVisible(on)

    def show_step(self, step: dict[str, Any]) -> None:
        for name, view in self.views.items():
            if self._boxes[name].isVisibleTo(self) and (name == "score" or name in step):
                view.set_images(display_images(step, name))

    def clear(self) -> None:
        for view in self.views.values():
            view.clear_images()


def _fields(generation: int, model, bounds, times: list[float]):
    """Runs on a worker thread: the fields of ``times``, or the error as text."""
    try:
        return generation, times, score_fields(model, bounds, times), None
    except Exception as exc:  # noqa: BLE001 - a plugin's network may raise anything; shown, not fatal
        return generation, times, None, f"{type(exc).__name__}: {exc}"


class PointStepView(pg.PlotWidget):
    """x_t of 2-D data with the score field, predicted x0 and particle paths.
    ``field_failed(str)``: the network could not be evaluated for the field."""

    field_failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        plot = self.plot_item = self.getPlotItem()
        plot.setAspectLocked(True)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        for name in ("left", "bottom", "top", "right"):  # the grid repainted only when the range changes
            plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        plain = {"antialias": False}  # antialiased raster paths cost several times more to paint
        self.field = pg.PlotDataItem(pen=pg.mkPen(120, 120, 120, 170, width=1), connect="pairs", name="score field", **plain)
        self.heads = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(90, 90, 90, 200))
        self.x0 = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(230, 159, 0, 110), name="predicted x₀")
        self.points = pg.ScatterPlotItem(size=3.5, pen=None, brush=pg.mkBrush(0, 114, 178, 190), name="x_t")
        self.paths = pg.PlotDataItem(pen=pg.mkPen(204, 121, 167, 200, width=1.2), connect="finite", name="particle paths",
                                     **plain)
        self.path_heads = pg.ScatterPlotItem(size=7, pen=pg.mkPen("k"), brush=pg.mkBrush("#CC79A7"))
        for item in (self.field, self.heads, self.x0, self.points, self.paths, self.path_heads):
            plot.addItem(item)
        self.bounds: tuple[float, float, float, float] | None = None
        self._model = None  # (method, net, data_info) for the field
        self.field_vectors: np.ndarray | None = None  # last field drawn (raw-scale score)
        self.field_error = ""  # why the field could not be evaluated (a broken plugin network)
        self.times: list[float] = []  # the trajectory's step times: the worker's batches come from them
        self._fields: dict[float, Field] = {}  # per step time, for this model and these bounds
        self._generation = 0  # a new model or view drops the fields (and answers) of the old one
        self._wanted: float | None = None  # the step time on screen whose field is missing
        self._last_batch_near = 0.0
        self._worker = None

    # --- what the field depends on --------------------------------------------------------
    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model
        self._forget_fields()

    def set_bounds(self, bounds: tuple[float, float, float, float]) -> None:
        """A fixed view for the whole trajectory (the field's grid covers it)."""
        self.bounds = bounds
        x0, x1, y0, y1 = bounds
        self.plot_item.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self._forget_fields()

    def set_times(self, times) -> None:
        """The step times of the trajectory shown (it grows while sampling)."""
        self.times = [float(t) for t in times]

    def _forget_fields(self) -> None:
        self._generation += 1
        self._fields.clear()
        self.field_error = ""

    @property
    def field_pending(self) -> bool:
        """A field is being evaluated (or waits to be) for the step on screen."""
        return self._wanted is not None

    # --- one step ---------------------------------------------------------------------------
    def show_step(self, step: dict[str, Any], paths: list[np.ndarray] | None = None) -> None:
        x = step["x_t"][:, :2].astype(np.float64)
        self.points.setData(pos=x)
        if "x0_hat" in step:
            self.x0.setData(pos=step["x0_hat"][:, :2].astype(np.float64))
        if paths:
            upto = np.stack(paths)  # (steps, K, 2)
            k = upto.shape[1]
            # one line per particle, NaN between them (connect="finite")
            lines = np.concatenate([upto.transpose(1, 0, 2), np.full((k, 1, 2), np.nan)], axis=1).reshape(-1, 2)
            self.paths.setData(lines[:, 0], lines[:, 1])
            self.path_heads.setData(pos=upto[-1])
        self.show_field(step["t"])

    def show_field(self, t: float) -> None:
        """The learned score at time ``t``: drawn at once when it was evaluated before,
        else asked of the worker and drawn when it arrives (the old arrows go meanwhile:
        they belong to another noise level)."""
        t = float(t)
        field = self._fields.get(t)
        if field is not None:
            self._wanted = None
            self._draw_field(field)
            return
        self._draw_field(None)
        if self._model is None or self.bounds is None or self.field_error:
            self._wanted = None
            return
        self._wanted = t
        if self._worker is None:
            self._evaluate_next()

    def _draw_field(self, field: Field | None) -> None:
        if field is None:
            self.field.setData([], [])
            self.heads.clear()
            self.field_vectors = None
            return
        self.field.setData(field.segments[:, 0], field.segments[:, 1])
        self.heads.setData(pos=field.ends)
        self.field_vectors = field.score

    @property
    def field_busy(self) -> bool:
        """The worker is evaluating fields (the one on screen, or the trajectory's others ahead of a scrub)."""
        return self._worker is not None

    def _evaluate_next(self, near: float | None = None) -> None:
        """Start the worker on the wanted step (or, with ``near``, none) and the nearest
        steps without a field."""
        t = self._wanted if near is None else near
        others = sorted((s for s in set(self.times) if s not in self._fields and s != t), key=lambda s: abs(s - t))
        batch = ([t] if near is None else []) + others[: FIELD_BATCH - (near is None)]
        self._last_batch_near = t
        worker = create_worker(_fields, self._generation, self._model, self.bounds, batch, _start_thread=False)
        # superqt's signal object lives in the GUI thread; connect bound slots only (docs/PITFALLS.md)
        worker.returned.connect(self._on_fields)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        worker.start()

    def _on_fields(self, result) -> None:
        generation, times, fields, error = result
        if generation != self._generation:
            return  # another model or view since
        if error is not None:
            self.field_error = error
            self._wanted = None
            self.field_failed.emit(error)
            return
        if len(self._fields) + len(fields) > FIELD_CACHE:
            self._fields.clear()
        self._fields.update(zip(times, fields))
        if self._wanted in self._fields:
            self.show_field(self._wanted)

    def _on_worker_finished(self) -> None:
        self._worker = None
        if self._model is None or self.bounds is None or self.field_error:
            return
        if self._wanted is not None and self._wanted not in self._fields:
            self._evaluate_next()  # the step on screen moved while the worker ran
        elif len(self._fields) < min(len(set(self.times)), FIELD_CACHE):
            self._evaluate_next(near=self._last_batch_near)  # the rest, ahead of the scrub: then it only draws

    def clear_step(self) -> None:
        # not ``clear``: PlotWidget binds that name to PlotItem.clear, which removes every item
        for item in (self.points, self.x0, self.heads, self.path_heads):
            item.clear()
        self.paths.setData([], [])
        self.field.setData([], [])


def points_bounds(*clouds: np.ndarray, margin: float = 0.08) -> tuple[float, float, float, float]:
    """A square view holding the 1-99 % range of the given point clouds."""
    return plot_bounds(*clouds, margin=margin, percentile=1.0)


class CompareView(QWidget):
    """The main run and a branch side by side: two image grids, or two scatters."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.images = (ImageGridView(), ImageGridView())
        self.scatters = (ScatterView(), ScatterView(color="#D55E00"))
        self.titles = (QLabel(), QLabel())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for k in range(2):
            column = QVBoxLayout()
            column.setSpacing(1)
            column.addWidget(self.titles[k])
            column.addWidget(self.images[k], 1)
            column.addWidget(self.scatters[k], 1)
            layout.addLayout(column, 1)
        self.set_kind("images")

    def set_kind(self, kind: str) -> None:
        for k in range(2):
            self.images[k].setVisible(kind == "images")
            self.scatters[k].setVisible(kind != "images")
        self.kind = kind

    def show_pair(self, states: tuple[np.ndarray, np.ndarray], titles: tuple[str, str], bounds=None) -> None:
        """``states``: raw-scale x of the main run and of the branch."""
        for k in range(2):
            self.titles[k].setText(titles[k])
            if self.kind == "images":
                self.images[k].set_images(as_uint8_nhwc(states[k][:MAX_IMAGES]))
            else:
                self.scatters[k].set_points(states[k][:, :2].astype(np.float64), autorange=bounds is None)
                if bounds is not None:
                    self.scatters[k].set_range(*bounds)

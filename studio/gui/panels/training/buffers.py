"""What the training monitor plots, kept in numpy buffers (no Qt).

Events land here as they arrive (O(1) amortised appends, no drawing); the plots read
the buffers from a timer at display rate. The same history is filled from a run's
``metrics.jsonl`` rows, so a resumed or followed run shows its past first.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from studio.engine.events import Progress

MB = 1024.0 * 1024.0


class Series:
    """A growing (x, y) float64 series: appends double the capacity when full, so an
    append is amortised O(1) and the plots get views without copying."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.n = 0

    def _reserve(self, n: int) -> None:
        if n > len(self._x):
            size = max(n, 2 * len(self._x))
            for name in ("_x", "_y"):
                grown = np.empty(size)
                grown[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, grown)

    def append(self, x: float, y: float) -> None:
        self._reserve(self.n + 1)
        self._x[self.n], self._y[self.n] = x, y
        self.n += 1

    def extend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        self._reserve(self.n + len(xs))
        self._x[self.n : self.n + len(xs)] = xs
        self._y[self.n : self.n + len(xs)] = ys
        self.n += len(xs)

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def __len__(self) -> int:
        return self.n


class LevelHeatmap:
    """Mean per-sample loss binned by log-SNR (rows) over training time (columns).

    A column covers ``span`` steps; when the steps outgrow the columns, neighbouring
    columns merge and ``span`` doubles, so memory stays bounded however long the run.
    ``curve`` is the recent loss by level: a per-bin moving average over Progress events.
    """

    def __init__(self, bins: int = 48, lo: float = -16.0, hi: float = 16.0, columns: int = 160):
        self.edges = np.linspace(lo, hi, bins + 1)
        self.centers = 0.5 * (self.edges[:-1] + self.edges[1:])
        self.columns = columns
        self.sums = np.zeros((columns, bins))
        self.counts = np.zeros((columns, bins))
        self.curve = np.full(bins, np.nan)
        self.span = 1
        self.used = 0  # columns holding data

    def clear(self, total_steps: int = 0, min_span: int = 1) -> None:
        """``min_span``: steps between Progress events, so that no column stays empty."""
        self.sums[:] = 0
        self.counts[:] = 0
        self.curve[:] = np.nan
        self.used = 0
        self.span = max(1, min_span, math.ceil(total_steps / self.columns))

    def add(self, step: int, log_snr: np.ndarray, loss: np.ndarray) -> None:
        if len(log_snr) == 0:
            return
        col = max(step - 1, 0) // self.span
        while col >= self.columns:  # merge pairs of columns: half the resolution, twice the time
            self.sums = np.concatenate([self.sums[0::2] + self.sums[1::2], np.zeros_like(self.sums[: self.columns // 2])])
            self.counts = np.concatenate([self.counts[0::2] + self.counts[1::2], np.zeros_like(self.counts[: self.columns // 2])])
            self.span *= 2
            self.used = (self.used + 1) // 2
            col = max(step - 1, 0) // self.span
        ok = np.isfinite(loss) & np.isfinite(log_snr)
        idx = np.clip(np.searchsorted(self.edges, log_snr[ok]) - 1, 0, len(self.centers) - 1)
        sums = np.bincount(idx, weights=loss[ok], minlength=len(self.centers))
        counts = np.bincount(idx, minlength=len(self.centers)).astype(float)
        self.sums[col] += sums
        self.counts[col] += counts
        self.used = max(self.used, col + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / counts
        seen = counts > 0
        fresh = seen & np.isnan(self.curve)
        self.curve[fresh] = mean[fresh]
        old = seen & ~fresh
        self.curve[old] = 0.8 * self.curve[old] + 0.2 * mean[old]

    def image(self) -> np.ndarray:
        """log10 mean loss, (used columns, bins); NaN where no sample fell."""
        counts = self.counts[: self.used]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sums[: self.used] / counts
            return np.where(counts > 0, np.log10(np.maximum(mean, 1e-12)), np.nan)


class TrainingHistory:
    """Every figure the monitor plots. ``version`` grows with each change, so the plot
    timer redraws only when something arrived."""

    CURVES = ("loss", "loss_smooth", "grad_norm", "lr", "samples_per_s", "memory", "memory_peak", "utilization")

    def __init__(self) -> None:
        self.series = {name: Series() for name in self.CURVES}
        self.levels = LevelHeatmap()
        self.levels_t = LevelHeatmap(bins=50, lo=0.0, hi=1.0)  # the same losses binned by t
        self._t_of_log_snr: tuple[np.ndarray, np.ndarray] | None = None
        self.memory_kind = ""
        self.version = 0
        self.step = 0
        self.total = 0
        self.last: Progress | None = None

    def clear(self, total_steps: int = 0, log_every: int = 1) -> None:
        for s in self.series.values():
            s.clear()
        self.levels.clear(total_steps, log_every)
        self.levels_t.clear(total_steps, log_every)
        self.memory_kind = ""
        self.step, self.total, self.last = 0, total_steps, None
        self.version += 1

    def set_schedule(self, t: np.ndarray | None, log_snr: np.ndarray | None) -> None:
        """The run's schedule curve, so that losses drawn at a log-SNR are also binned by
        t: t(lambda) by interpolation on the monotone curve (a learned one's latest)."""
        if t is None or log_snr is None:
            self._t_of_log_snr = None
            return
        order = np.argsort(log_snr)
        self._t_of_log_snr = (np.asarray(log_snr, np.float64)[order], np.asarray(t, np.float64)[order])

    def add_levels(self, step: int, log_snr: np.ndarray, loss: np.ndarray) -> None:
        self.levels.add(step, log_snr, loss)
        if self._t_of_log_snr is not None:
            self.levels_t.add(step, np.interp(log_snr, *self._t_of_log_snr), loss)

    def add_progress(self, p: Progress) -> None:
        s = self.series
        s["loss"].append(p.step, p.loss)
        s["loss_smooth"].append(p.step, p.loss_smooth)
        s["grad_norm"].append(p.step, p.grad_norm)
        s["lr"].append(p.step, p.lr)
        s["samples_per_s"].append(p.step, p.samples_per_s)
        self._add_memory(p.step, p.memory)
        self.add_levels(p.step, p.level_log_snr, p.level_loss)
        self.step, self.total, self.last = p.step, p.total, p
        self.version += 1

    def _add_memory(self, step: int, mem: dict[str, Any] | None) -> None:
        s = self.series
        mem = mem or {}
        self.memory_kind = mem.get("kind", "")
        if self.memory_kind == "cuda":
            s["memory"].append(step, mem.get("allocated", 0) / MB)
            s["memory_peak"].append(step, mem.get("peak", 0) / MB)
            if "utilization" in mem:
                s["utilization"].append(step, mem["utilization"])
        elif self.memory_kind == "cpu":
            s["memory"].append(step, mem.get("rss", 0) / MB)
            s["utilization"].append(step, mem.get("cpu_percent", 0.0))

    def add_rows(self, rows: list[dict[str, Any]], batch_size: int) -> None:
        """Rows of ``metrics.jsonl`` (one per step); the rate, the memory figures and a
        sample of the (log-SNR, loss) pairs are on the last row of each flushed batch."""
        if not rows:
            return
        steps = [r["step"] for r in rows]
        s = self.series
        for name in ("loss", "loss_smooth", "grad_norm", "lr"):
            s[name].extend(steps, [r.get(name, math.nan) for r in rows])
        rated = [r for r in rows if "steps_per_s" in r]
        s["samples_per_s"].extend([r["step"] for r in rated], [r["steps_per_s"] * batch_size for r in rated])
        for r in rows:
            if r.get("memory"):
                self._add_memory(r["step"], r["memory"])
            if r.get("level_log_snr"):
                self.add_levels(r["step"], np.asarray(r["level_log_snr"], np.float32), np.asarray(r["level_loss"], np.float32))
        self.step = max(self.step, steps[-1])
        self.version += 1

"""Where a schedule puts training and sampling on the log-SNR axis.

A schedule seen from training is a density of noise levels (Kingma & Gao 2023, section
3): with ``t ~ U(0, 1)`` the log-SNR ``lambda = lambda(t)`` has density

    p(lambda) = 1 / |d lambda / dt|   at t = lambda^{-1}(lambda),

(the change of variables; the slope by autograd, so learned and plugin schedules need
nothing of their own). A schedule whose training draws one of a finite set of levels
uniformly (DDPM's T steps, NCSN's L sigmas) visits the histogram of those levels
instead. Seen from sampling, a schedule and a step grid put N ticks on the same axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import StudioError
from .samplers.grids import time_grid
from .schedules import DiscreteSchedule, GeometricSchedule, Schedule

# The bands the diagnostics report (Kingma & Gao 2023, fig. 2: most of what matters for
# perceptual quality lies in -5 < lambda < 5; below is almost pure noise, above almost data).
BAND_EDGES = (-5.0, 5.0)
BAND_NAMES = ("lambda < -5", "-5 <= lambda <= 5", "lambda > 5")
# Plots clip the axis here: the cosine schedule's lambda(0) is +inf.
PLOT_LIMIT = 20.0


@dataclass
class NoiseLevelDensity:
    """p(lambda) of one schedule: a curve (``kind = "continuous"``) or a histogram
    (``"histogram"``, ``edges`` of the bins, ``levels`` the lambdas drawn uniformly).

    ``log_snr`` ascends; ``density`` integrates to the share of training inside the
    plotted range (1 unless part of it lies beyond ``PLOT_LIMIT`` or at lambda = -inf).
    """

    log_snr: np.ndarray
    density: np.ndarray
    kind: str
    edges: np.ndarray | None = None
    levels: np.ndarray | None = None


def training_levels(schedule: Schedule) -> Tensor | None:
    """The finite set of log-SNRs a schedule's training draws uniformly (DDPM's T steps,
    NCSN's L levels), or None for a continuous schedule (t ~ U(0, 1))."""
    with torch.no_grad():
        if isinstance(schedule, DiscreteSchedule):
            return schedule.log_snr_steps.double().clone()
        if isinstance(schedule, GeometricSchedule):
            return schedule.log_snr(schedule.sampling_times()).double()
    return None


def log_snr_and_slope(schedule: Schedule, t: Tensor) -> tuple[Tensor, Tensor]:
    """lambda(t) and d lambda / dt at ``t`` by autograd (float64 where the schedule allows)."""
    t = torch.as_tensor(t, dtype=torch.float64).detach()
    with torch.enable_grad():
        x = t.to(_schedule_dtype(schedule)).requires_grad_(True)
        lam = schedule.log_snr(x)
        (slope,) = torch.autograd.grad(lam.sum(), x)
    return lam.detach().double(), slope.detach().double()


def log_snr_slope(schedule: Schedule, t: Tensor) -> Tensor:
    """d lambda / dt at ``t`` by autograd."""
    return log_snr_and_slope(schedule, t)[1]


def _bisect(schedule: Schedule, target: Tensor, iterations: int = 60) -> Tensor:
    lo = torch.zeros_like(target)
    hi = torch.ones_like(target)
    with torch.no_grad():
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            above = schedule.log_snr(mid.to(_schedule_dtype(schedule))).double() > target  # too clean: go later
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
    return 0.5 * (lo + hi)


def time_at_log_snr(schedule: Schedule, log_snr: Tensor | np.ndarray, grid: int = 2049, newton: int = 4) -> Tensor:
    """t with lambda(t) = ``log_snr`` (lambda is strictly decreasing); values beyond the
    schedule's range give t = 0 or 1.

    A start interpolated on a dense t grid, then Newton steps t -= (lambda(t) - target) /
    lambda'(t) (one autograd call each, instead of ~60 bisection calls); any point left
    off by more than 1e-9 is finished by bisection, so the answer is always exact.
    """
    target = torch.as_tensor(np.asarray(log_snr, dtype=np.float64)).reshape(-1)
    shape = np.shape(log_snr)
    t_grid = torch.linspace(0.0, 1.0, grid, dtype=torch.float64)
    with torch.no_grad():
        lam_grid = schedule.log_snr(t_grid.to(_schedule_dtype(schedule))).double()
    ok = torch.isfinite(lam_grid)
    lam_up, t_up = lam_grid[ok].flip(0).numpy(), t_grid[ok].flip(0).numpy()  # ascending lambda
    t = torch.as_tensor(np.interp(target.numpy(), lam_up, t_up))
    inside = (target > float(lam_grid[-1])) & (target < float(lam_grid[0]))  # the true ends, maybe +-inf
    if not inside.any():
        return t.reshape(shape)
    ti, goal = t[inside], target[inside]
    for _ in range(newton):
        lam, slope = log_snr_and_slope(schedule, ti)
        step = (lam - goal) / slope
        ti = torch.where(torch.isfinite(step), (ti - step).clamp(0.0, 1.0), ti)
    with torch.no_grad():
        err = (schedule.log_snr(ti.to(_schedule_dtype(schedule))).double() - goal).abs()
    off = ~(err <= 1e-9 * (1.0 + goal.abs()))
    if off.any():
        ti[off] = _bisect(schedule, goal[off])
    t[inside] = ti
    return t.reshape(shape)


def log_snr_range(schedule: Schedule) -> tuple[float, float]:
    """(lambda at t = 1, lambda at t = 0), each possibly infinite."""
    with torch.no_grad():
        ends = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64)).double()
    levels = training_levels(schedule)
    if levels is not None:
        return float(levels.min()), float(levels.max())
    return float(ends[0]), float(ends[1])


def plot_range(schedule: Schedule) -> tuple[float, float]:
    lo, hi = log_snr_range(schedule)
    return max(lo, -PLOT_LIMIT), min(hi, PLOT_LIMIT)


def log_snr_density(schedule: Schedule, n: int = 400, bins: int | None = None) -> NoiseLevelDensity:
    """p(lambda) of training on ``schedule`` (module docstring): ``n`` points of the
    curve on a uniform lambda grid, or a histogram of the discrete levels in ``bins``
    bins (default: about one per 8 levels, 16 to 64)."""
    levels = training_levels(schedule)
    if levels is not None:
        return _histogram(levels.numpy(), bins)
    lo, hi = plot_range(schedule)
    lam = np.linspace(lo, hi, n)
    return NoiseLevelDensity(lam, density_at(schedule, lam), "continuous")


def _histogram(levels: np.ndarray, bins: int | None) -> NoiseLevelDensity:
    shown = levels[np.isfinite(levels) & (np.abs(levels) <= PLOT_LIMIT)]
    if bins is None:
        bins = int(np.clip(len(levels) // 8, 16, 64))
    if len(shown) == 0:
        return NoiseLevelDensity(np.zeros(0), np.zeros(0), "histogram", np.zeros(1), levels)
    lo, hi = float(shown.min()), float(shown.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(shown, bins=bins, range=(lo, hi))
    # normalised by every level, so the bins integrate to the share that is plotted
    density = counts / (len(levels) * np.diff(edges))
    return NoiseLevelDensity(0.5 * (edges[1:] + edges[:-1]), density, "histogram", edges, levels)


def density_at(schedule: Schedule, log_snr: np.ndarray | Tensor, continuous: bool = False) -> np.ndarray:
    """p(lambda) at the given lambdas, 0 outside the schedule's range. Discrete
    schedules: the piecewise-constant density of their histogram (``log_snr_density``),
    unless ``continuous`` (an objective drawing t ~ U(0, 1) on the schedule's
    interpolated log-SNR, as VDM does on a DDPM schedule)."""
    lam = np.asarray(log_snr, dtype=np.float64)
    levels = None if continuous else training_levels(schedule)
    if levels is not None:
        hist = _histogram(levels.numpy(), None)
        if hist.edges is None or len(hist.edges) < 2:
            return np.zeros_like(lam)
        k = np.searchsorted(hist.edges, lam, side="right") - 1
        k[lam == hist.edges[-1]] = len(hist.density) - 1
        inside = (k >= 0) & (k < len(hist.density))
        return np.where(inside, hist.density[np.clip(k, 0, len(hist.density) - 1)], 0.0)
    with torch.no_grad():
        ends = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=_schedule_dtype(schedule))).double()
    lo, hi = float(ends[0]), float(ends[1])
    t = time_at_log_snr(schedule, lam)
    slope = log_snr_slope(schedule, t).numpy()
    with np.errstate(divide="ignore"):
        p = 1.0 / np.abs(slope)
    return np.where((lam >= lo) & (lam <= hi) & np.isfinite(p), p, 0.0)


def band_shares(schedule: Schedule, edges: tuple[float, float] = BAND_EDGES) -> dict[str, float]:
    """The share of training in lambda < edges[0], between, and > edges[1].

    Continuous schedules exactly: lambda is decreasing, so P(lambda > e) = t(e) with
    t(e) found by bisection. Discrete ones: the fraction of levels in each band.
    """
    lo_edge, hi_edge = check_bands(edges)
    levels = training_levels(schedule)
    if levels is not None:
        lev = levels.numpy()
        low = float(np.mean(lev < lo_edge))
        high = float(np.mean(lev > hi_edge))
    else:
        t = time_at_log_snr(schedule, [lo_edge, hi_edge]).numpy()
        low, high = float(1.0 - t[0]), float(t[1])
    names = (f"lambda < {lo_edge:g}", f"{lo_edge:g} <= lambda <= {hi_edge:g}", f"lambda > {hi_edge:g}")
    return {names[0]: low, names[1]: max(0.0, 1.0 - low - high), names[2]: high}


# ----------------------------------------------------------------------------------
# Where a sampler spends its steps
# ----------------------------------------------------------------------------------


@dataclass
class GridTicks:
    """The lambda of each point of a sampler's time grid, noisiest first, and the
    largest change of lambda between neighbouring points."""

    t: np.ndarray
    log_snr: np.ndarray
    largest_jump: float
    largest_jump_at: int  # the step whose move to the next grid point is the largest


def grid_ticks(schedule: Schedule, steps: int, grid: str = "uniform_t", t_start: float = 1.0, rho: float = 7.0) -> GridTicks:
    """``steps`` grid points of ``grid`` (``samplers.grids.time_grid``) as lambdas.

    The jump of a step is |lambda(t_{i+1}) - lambda(t_i)| between grid points; the last
    step, which lands on the data (lambda = lambda(0), +inf for some schedules), is not
    counted.
    """
    times = time_grid(schedule, steps, grid=grid, t_start=t_start, rho=rho).double().cpu()
    with torch.no_grad():
        lam = schedule.log_snr(times.to(_schedule_dtype(schedule))).double().numpy()
    jumps = np.abs(np.diff(lam))
    finite = np.where(np.isfinite(jumps), jumps, -1.0)
    at = int(np.argmax(finite)) if len(jumps) else 0
    largest = float(jumps[at]) if len(jumps) else 0.0
    return GridTicks(times.numpy(), lam, largest, at)


def _schedule_dtype(schedule: Schedule) -> Any:
    return torch.float32 if schedule.learned else torch.float64


def check_bands(edges: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(e) for e in edges)
    except (TypeError, ValueError):
        raise StudioError(f"band edges {edges!r} must be two numbers") from None
    if not lo < hi:
        raise StudioError(f"band edges {edges!r}: the first must be below the second")
    return lo, hi

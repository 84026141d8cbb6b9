"""Time grids a sampler visits: descending continuous times from ``t_start``.

* ``uniform_t``: the schedule's own sampling grid scaled to [0, t_start]
  (``schedule.sampling_times(steps) * t_start``: ``t_i = t_start i / steps`` on variance
  preserving schedules, NCSN's geometric noise levels on variance exploding ones).
* ``uniform_log_snr``: equal steps in log-SNR lambda, the variable in which DPM-Solver
  (Lu et al. 2022, sec. 3.3) writes the exact solution of the probability-flow ODE.
* ``karras``: EDM's grid (Karras et al. 2022, eq. 5) on the noise level
  ``sigma~ = sigma / alpha = exp(-lambda / 2)``:
  ``sigma~_i = (sigma~_max^(1/rho) + i / (n - 1) (sigma~_min^(1/rho) - sigma~_max^(1/rho)))^rho``,
  rho = 7, denser near the data.

The last two run from lambda(t_start) to lambda at the *schedule's* smallest grid time
(``schedule.sampling_times()[-1]``: 1 / T on variance preserving schedules, 0 on NCSN's)
with both ends on the grid. With ``sigma_max`` (EDM's, on sigma~) below sigma~(t_start)
their first step jumps from t_start to sigma~ = sigma_max and the rest of the grid spans
[sigma_max, the end]: a schedule whose prior end lies far into pure noise (DDPM's linear
betas reach lambda = -10) otherwise spends steps where x0_hat is the data's mean. So every
grid kind has the property branching relies on: a ``steps - k``-point grid from the grid's
k-th time is the rest of the ``steps``-point one (with sigma_max too: from its second time,
sigma_max's, on there is no jump). Times of a log-SNR are found by bisection (every
schedule's log-SNR is strictly decreasing in t), so custom, learned and plugin schedules
get every grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import StudioError
from ..schedules import Schedule

GRIDS = ("uniform_t", "uniform_log_snr", "karras")


def schedule_device(schedule: Schedule) -> torch.device:
    """The schedule's own device (a method moved to the GPU takes its schedule along)."""
    return next(iter([*schedule.parameters(), *schedule.buffers()]), torch.empty(0)).device


def log_snr_of(schedule: Schedule, t: Tensor) -> Tensor:
    """lambda(t) in float64 on the CPU, outside autograd (a learned schedule is not trained here)."""
    with torch.no_grad():
        return schedule.log_snr(t.to(schedule_device(schedule))).detach().to(torch.float64).cpu()


def time_of_log_snr(schedule: Schedule, lam: Tensor, lo: float, hi: float) -> Tensor:
    """Times in [lo, hi] where the schedule's log-SNR equals ``lam``, by bisection
    (64 halvings: the float64 resolution of [0, 1])."""
    a = torch.full_like(lam, lo, dtype=torch.float64)
    b = torch.full_like(lam, hi, dtype=torch.float64)
    for _ in range(64):
        mid = 0.5 * (a + b)
        above = log_snr_of(schedule, mid) > lam  # log-SNR decreases: the root lies later
        a, b = torch.where(above, mid, a), torch.where(above, b, mid)
    return 0.5 * (a + b)


def time_grid(
    schedule: Schedule, steps: int, grid: str = "uniform_t", t_start: float = 1.0, rho: float = 7.0,
    sigma_max: float | None = None,
) -> Tensor:
    """``steps`` descending times (float64) from ``t_start`` on the grid ``grid``
    (``sigma_max``: where a log-SNR or Karras grid's spacing starts, module docstring)."""
    if grid not in GRIDS:
        raise StudioError(f"grid = {grid!r} is not allowed; allowed: {', '.join(GRIDS)}")
    if grid == "uniform_t":
        if sigma_max is not None:
            raise StudioError("sigma_max applies to the grids uniform_log_snr and karras, not uniform_t")
        return schedule.sampling_times(steps) * t_start
    if steps == 1:
        return torch.tensor([t_start], dtype=torch.float64)
    t_end = float(schedule.sampling_times()[-1])
    if not t_start > t_end:
        raise StudioError(
            f"grid {grid!r}: t_start = {t_start!r} must be above the schedule's smallest grid time {t_end:.6g} "
            "for more than one step"
        )
    lam_start, lam_end = log_snr_of(schedule, torch.tensor([t_start, t_end], dtype=torch.float64)).tolist()
    if not (math.isfinite(lam_end) and lam_start > -math.inf):
        # a zero-terminal-SNR start (lambda = -inf) has no finite log-SNR or sigma grid
        raise StudioError(f"grid {grid!r} needs a finite log-SNR at t = {t_start!r} and t = {t_end:.6g}")
    head: list[float] = []
    if sigma_max is not None and steps > 2:
        lam_top = -2.0 * math.log(sigma_max)
        # a branch from the grid's second time starts at lam_top itself (found by bisection)
        if lam_top - lam_start > 1e-6 * max(1.0, abs(lam_top)) and lam_top < lam_end:
            head, steps = [t_start], steps - 1
            t_start = float(time_of_log_snr(schedule, torch.tensor([lam_top], dtype=torch.float64), t_end, t_start)[0])
            lam_start = lam_top
    frac = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    if grid == "uniform_log_snr":
        lam = lam_start + frac * (lam_end - lam_start)
    else:  # EDM eq. 5 on sigma~ = exp(-lambda / 2): sigma~^(1/rho) = exp(-lambda / (2 rho))
        s_max, s_min = math.exp(-lam_start / (2 * rho)), math.exp(-lam_end / (2 * rho))
        lam = -2.0 * rho * torch.log(s_max + frac * (s_min - s_max))
    times = time_of_log_snr(schedule, lam[1:-1], t_end, t_start)
    return torch.cat([torch.tensor([*head, t_start], dtype=torch.float64), times, torch.tensor([t_end], dtype=torch.float64)])

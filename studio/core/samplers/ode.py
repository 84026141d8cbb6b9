"""Fixed-step solvers of the probability-flow ODE (Song et al. 2021, eq. 13).

The ODE in the schedule's own time, ``dx/dt = f x - g^2 score / 2 = (f + k) x - k alpha
x0_hat`` with ``f`` and ``k = g^2 / (2 sigma^2)`` from core.sde, is Karras et al.'s
(2022) Algorithm 1 with s(t) = alpha_t and sigma(t) = sigma_t / alpha_t. Between grid
times t > s (``h = s - t < 0``):

* ``euler``: ``x_s = x + h d(x, t)``, one network call per step;
* ``heun``: Karras et al. Algorithm 1, ``x' = x + h d(x, t)``, ``x_s = x + h (d(x, t) +
  d(x', s)) / 2``: two calls per step;
* ``dpmpp_2m``: DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), the exact solution of the
  ODE in the half log-SNR ``l = lambda / 2`` with a linear multistep x0_hat:
  ``x_s = sigma_s / sigma_t x + alpha_s (1 - e^{-h}) D``, ``h = l_s - l_t``,
  ``D = (1 + 1 / 2r) x0_hat - x0_hat_prev / 2r``, ``r = h_prev / h`` (first step: D =
  x0_hat, i.e. DDIM). One call per step.

Every one ends with the step onto the data, ``x_0 = x0_hat`` (the Euler step to sigma
= 0; Karras et al.: the last step is Euler). One record per step; a branch of
``dpmpp_2m`` from record k continues second order when given record k-1's x0_hat and t
(``x0_prev``, ``t_prev``: Sampler.__call__, ``history = 1``), and starts first order without them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..errors import StudioError
from ..registry import SAMPLERS
from ..sde import sde_coefficients
from .base import (
    STEP_OPTIONS, Level, Sampler, Step, grid_times, levels_at, make_step, take_step, to_data,
)


def sde_levels(sampler: str, method: Any, steps: int, t_start: float, opts: dict[str, Any], side: int = -1):
    """The grid's levels and the SDE's f and k there (core.sde; ``side``: which segment of
    a discrete schedule, -1 the one below each time, +1 the one above)."""
    times = grid_times(method.schedule, steps, t_start, opts)
    c = sde_coefficients(method.schedule, times, side)
    if not (torch.isfinite(c.f).all() and torch.isfinite(c.k).all()):
        raise StudioError(
            f"sampler {sampler!r} needs a finite log-SNR slope at every grid time; a zero-terminal-SNR schedule "
            "has none at t = 1 (start below it with t_start, or use ddim / ancestral)"
        )
    return levels_at(method.schedule, times), c.f.tolist(), c.k.tolist()


def euler_step(kind: str, t: Level, f: float, k: float, h: float) -> Step:
    """x + h ((f + k) x - k alpha x0_hat)."""
    return make_step(kind, t, 1.0 + h * (f + k), -h * k * t.alpha, 0.0, 0.0)


class HeunStep(NamedTuple):
    """Karras et al. Algorithm 1, lines 5-8: an Euler step to s, then the trapezoid."""

    level: Level
    first: Step  # x' = x + h d(x, t)
    second: Step  # x' + h d(x', s)
    evals = 2

    def take(
        self, net: nn.Module, x: Tensor, generator: torch.Generator, clip: float | None, past: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor, Tensor]:
        x0, eps, x_euler = take_step(self.first, net, x, generator, clip)
        y = take_step(self.second, net, x_euler, generator, clip)[2]
        # x + h (d + d') / 2 = (x + (x' + h d')) / 2
        return x0, eps, torch.add(x, y).mul_(0.5)


class ODESampler(Sampler):
    specs = STEP_OPTIONS


class Euler(ODESampler):
    """Euler on the probability-flow ODE (Song et al. 2021, eq. 13): one call per step."""

    name = "euler"

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        kind = method.prediction
        levels, f, k = sde_levels(self.name, method, steps, t_start, opts)
        plan = [euler_step(kind, t, f[i], k[i], s.t - t.t) for i, (t, s) in enumerate(zip(levels, levels[1:]))]
        return plan + [to_data(kind, levels[-1])]


class Heun(ODESampler):
    """Heun on the probability-flow ODE (Karras et al. 2022, Alg. 1): two calls per step, the last Euler."""

    name = "heun"

    def evaluations(self, steps: int, opts: dict[str, Any]) -> int:
        return 2 * steps - 1

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Any]:
        kind = method.prediction
        levels, f, k = sde_levels(self.name, method, steps, t_start, opts)
        # the second call at s sees the segment above s (the step's own) on a discrete schedule
        f_up, k_up = sde_levels(self.name, method, steps, t_start, opts, side=+1)[1:]
        plan: list[Any] = []
        for i, (t, s) in enumerate(zip(levels, levels[1:])):
            h = s.t - t.t
            plan.append(HeunStep(t, euler_step(kind, t, f[i], k[i], h), euler_step(kind, s, f_up[i + 1], k_up[i + 1], h)))
        return plan + [to_data(kind, levels[-1])]


class DPMSolverPP2M(ODESampler):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): second order from the previous x0_hat, one call per step."""

    name = "dpmpp_2m"
    history = 1

    def plan(
        self, method: Any, steps: int, t_start: float, opts: dict[str, Any], t_prev: tuple[float, ...] = ()
    ) -> list[Step]:
        return dpmpp_2m_plan(method, steps, t_start, opts, t_prev, eta=float(opts.get("eta", 0.0)))


def dpmpp_2m_plan(
    method: Any, steps: int, t_start: float, opts: dict[str, Any], t_prev: tuple[float, ...], eta: float
) -> list[Step]:
    """DPM-Solver++(2M) with noise ``eta`` in [0, 1] (0: the ODE, Lu et al. Alg. 2; 1: the
    reverse SDE, reverse_sde.DPMSolverPP2MSDE): in the half log-SNR, h = l_s - l_t,
    ``x_s = sigma_s / sigma_t e^{-eta h} x + alpha_s (1 - e^{-(1 + eta) h}) D
    + sigma_s sqrt(1 - e^{-2 eta h}) z``, ``D = (1 + 1 / 2r) x0_hat - x0_hat_prev / 2r``,
    ``r = h_prev / h``; D = x0_hat on the first step (DDIM at eta 0, the DDPM posterior
    q(x_s | x_t, x0 = x0_hat) at eta 1)."""
    kind = method.prediction
    levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
    plan, h_prev = [], None
    if t_prev:  # a branch: the step before it went from t_prev[0] to t_start
        h_prev = history_steps(method, levels[0], t_prev)[0]
    for t, s in zip(levels, levels[1:]):
        h = 0.5 * (s.log_snr - t.log_snr)
        phi = -math.expm1(-(1.0 + eta) * h)  # 1 - e^{-(1 + eta) h}
        A, noise = s.sigma / t.sigma * math.exp(-eta * h), s.sigma * math.sqrt(-math.expm1(-2.0 * eta * h))
        if h_prev is None:
            B, E = s.alpha * phi, ()
        else:
            half_inv_r = 0.5 * h / h_prev  # 1 / (2 r)
            B, E = s.alpha * phi * (1.0 + half_inv_r), (-s.alpha * phi * half_inv_r,)
        plan.append(make_step(kind, t, A, B, 0.0, noise, E))
        h_prev = h
    return plan + [to_data(kind, levels[-1])]


def history_steps(method: Any, start: Level, t_prev: tuple[float, ...]) -> list[float]:
    """The half log-SNR steps a branch's history made: from t_prev[0] to ``start``,
    from t_prev[1] to t_prev[0], ... (most recent first)."""
    lams = [start.log_snr] + [lv.log_snr for lv in levels_at(method.schedule, torch.tensor(t_prev, dtype=torch.float64))]
    return [0.5 * (a - b) for a, b in zip(lams, lams[1:])]


for _cls in (Euler, Heun, DPMSolverPP2M):
    SAMPLERS.register(_cls.name, _cls(), description=_cls.__doc__)

"""An adaptive solve of the probability-flow ODE: dopri5 (RK45, Dormand & Prince 1980)
from torchdiffeq, with tolerances ``rtol``, ``atol`` (score_sde solves the same ODE with
scipy's RK45 at 1e-5 for its samples and likelihoods).

The ODE is solved in the log-SNR lambda rather than in t. Dividing Song et al.'s eq. 13
by dlambda/dt (core.sde) leaves

    dx/dlambda = (d log alpha / dlambda) x + (alpha x0_hat - x) / 2,

with ``d log alpha / dlambda = sigma^2 / 2`` on variance preserving processes and 0 on
exploding ones: no derivative of the schedule at all, so a discrete schedule's kinks in
lambda(t) do not stall the step-size control, and every schedule with the same end
points shares one ODE (Kingma et al. 2021, sec. 5.1). The solution is the same curve as
the t-ODE's, which makes this the reference of the fixed-step solvers.

Records: one per grid time (``grid``, ``steps`` as the other samplers), each solving one
interval; its ``nfe`` counts that interval's evaluations, known only after it
(``adaptive = True``). The last step lands on the data (x0_hat, one call).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import StudioError
from ..registry import SAMPLERS
from .base import (
    CLIP_OPTION, GRID_OPTION, SIGMA_MAX_OPTION, Level, OptionSpec, Sampler, c_in_of, check_number, grid_times,
    levels_at, readout, to_data,
)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def level_of(log_snr: float, variance_preserving: bool) -> Level:
    """alpha and sigma of a log-SNR (VDM eq. 3-4, or alpha = 1 for VE); t is not needed."""
    if variance_preserving:
        alpha, sigma = math.sqrt(sigmoid(log_snr)), math.sqrt(sigmoid(-log_snr))
    else:
        alpha, sigma = 1.0, math.exp(-0.5 * log_snr)
    return Level(math.nan, log_snr, alpha, sigma)


class LogSNRFlow:
    """dx/dlambda of the probability-flow ODE (module docstring) for a network, counting
    its calls and keeping the first call's (x0_hat, eps_hat)."""

    def __init__(self, net: nn.Module, kind: str, variance_preserving: bool, clip: float | None = None):
        self.net, self.kind, self.vp, self.clip = net, kind, variance_preserving, clip
        self.nfe = 0
        self.first: tuple[Tensor, Tensor] | None = None

    def denoise(self, x: Tensor, log_snr: float) -> tuple[Tensor, Tensor, Level]:
        level = level_of(log_snr, self.vp)
        p, q, u, w = readout(self.kind, level.alpha, level.sigma)
        out = self.net(x * c_in_of(level), x.new_full((x.shape[0],), log_snr))
        self.nfe += 1
        x0 = torch.add(x * p, out, alpha=q)
        if self.clip:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0, torch.add(x * u, out, alpha=w), level

    def velocity(self, x: Tensor, log_snr: float) -> Tensor:
        x0, eps, level = self.denoise(x, log_snr)
        if self.first is None:
            self.first = (x0, eps)
        dlog_alpha = 0.5 * level.sigma**2 if self.vp else 0.0
        return torch.add(x * (dlog_alpha - 0.5), x0, alpha=0.5 * level.alpha)

    def __call__(self, log_snr: Tensor, x: Tensor) -> Tensor:
        return self.velocity(x, float(log_snr))


def solve(flow: Any, x: Tensor, lam_from: float, lam_to: float, rtol: float, atol: float) -> Tensor:
    """dopri5 from lambda = lam_from to lam_to (either direction)."""
    from torchdiffeq import odeint  # here, not at import: it pulls in scipy (~1 s of the app's launch)

    span = torch.tensor([lam_from, lam_to], dtype=torch.float64, device=x.device)
    return odeint(flow, x, span, rtol=rtol, atol=atol, method="dopri5")[-1]


def check_tolerance(sampler: str, key: str, value: Any) -> None:
    check_number(sampler, key, value, 0.0, 1.0)


class IntervalStep:
    """One grid interval solved adaptively; ``evals`` is set by the solve."""

    def __init__(self, level: Level, to: Level, kind: str, vp: bool, rtol: float, atol: float):
        self.level, self.to, self.kind, self.vp, self.rtol, self.atol = level, to, kind, vp, rtol, atol
        self.evals = 0

    def take(
        self, net: nn.Module, x: Tensor, generator: torch.Generator, clip: float | None, past: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor, Tensor]:
        flow = LogSNRFlow(net, self.kind, self.vp, clip)
        x_next = solve(flow, x, self.level.log_snr, self.to.log_snr, self.rtol, self.atol)
        self.evals = flow.nfe
        return (*flow.first, x_next)  # dopri5's first call is at (lambda_t, x)


class RK45(Sampler):
    """Adaptive dopri5 (RK45) on the probability-flow ODE in log-SNR (torchdiffeq); the reference solver."""

    name = "rk45"
    adaptive = True
    specs = (
        OptionSpec("rtol", float, 1e-5, "relative tolerance of the adaptive step (score_sde: 1e-5)"),
        OptionSpec("atol", float, 1e-5, "absolute tolerance of the adaptive step"),
        # where the records fall; uniform_t would end a 2-point grid (one interval solved to
        # tolerance, as the Samplers panel runs it) at t = 1/2 on variance-preserving schedules
        GRID_OPTION._replace(default="uniform_log_snr"),
        SIGMA_MAX_OPTION,
        CLIP_OPTION,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        check_tolerance(self.name, "rtol", opts["rtol"])
        check_tolerance(self.name, "atol", opts["atol"])

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Any]:
        kind, vp = method.prediction, method.schedule.variance_preserving
        levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
        if not all(math.isfinite(lv.log_snr) for lv in levels):
            raise StudioError("sampler 'rk45' needs a finite log-SNR at every grid time (a zero-terminal-SNR start has none)")
        rtol, atol = float(opts["rtol"]), float(opts["atol"])
        plan: list[Any] = [IntervalStep(t, s, kind, vp, rtol, atol) for t, s in zip(levels, levels[1:])]
        return plan + [to_data(kind, levels[-1])]


SAMPLERS.register("rk45", RK45(), description=RK45.__doc__)

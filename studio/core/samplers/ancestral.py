"""Ancestral sampling: each step draws z_s from q(z_s | z_t, x = x0_hat).

* DDPM (Ho et al. 2020, Algorithm 2): on a discrete schedule with one sampler step per
  schedule step, the schedule's own posterior coefficients (eq. 6-7),
  ``x_{t-1} = c1 x0_hat + c2 x_t + sigma_t z`` with ``sigma_t^2 = beta_t`` or
  ``beta~_t``; this is Algorithm 2 with ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``.
* Any other grid, and continuous schedules (VDM's ancestral sampler on a T-step grid,
  Kingma et al. 2021, appendix A.4): between consecutive times s < t, with
  ``c = 1 - SNR(t) / SNR(s)``,
  ``mean = alpha_s / alpha_t (1 - c) z_t + alpha_s c x0_hat``, ``variance = sigma_s^2 c``
  (eq. 32-33), or the forward variance ``sigma_{t|s}^2 = sigma_t^2 c`` for
  ``variance="beta"``.
* Variance exploding (NCSN, alpha = 1): the same formulas are the SMLD reverse
  diffusion / ancestral sampler of Song et al. 2021, appendix F:
  ``x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) score + sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) z``.

The last step lands on the data (t = 0): the mean without noise, i.e. x0_hat.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ..errors import StudioError
from ..registry import SAMPLERS
from .base import (
    STEP_OPTIONS, Level, OptionSpec, Sampler, Step, grid_times, levels_at, make_step, posterior_factor, to_data,
)


VARIANCES = ("posterior", "beta")


def ancestral_step(kind: str, t: Level, s: Level, variance: str) -> Step:
    """p(z_s | z_t) = q(z_s | z_t, x = x0_hat) between continuous times s < t."""
    c = posterior_factor(t.log_snr, s.log_snr)
    # alpha_s / alpha_t (1 - c) written as alpha_t sigma_s^2 / (sigma_t^2 alpha_s): finite at alpha_t = 0
    A = t.alpha * s.sigma**2 / (t.sigma**2 * s.alpha)
    B = s.alpha * c
    var = s.sigma**2 * c if variance == "posterior" else t.sigma**2 * c
    return make_step(kind, t, A, B, 0.0, math.sqrt(max(var, 0.0)))


def ddpm_plan(kind: str, schedule: Any, steps: int, variance: str) -> list[Step]:
    """Ho et al. Algorithm 2 on the schedule's last ``steps`` steps (indices steps-1 .. 0)."""
    T = schedule.steps
    c1 = schedule.posterior_mean_coef1.tolist()
    c2 = schedule.posterior_mean_coef2.tolist()
    var = (schedule.posterior_variance if variance == "posterior" else schedule.betas).tolist()
    abar = schedule.alpha_bar.tolist()
    lam = schedule.log_snr_steps.tolist()
    plan = []
    for i in range(steps - 1, -1, -1):
        level = Level((i + 1) / T, lam[i], math.sqrt(abar[i]), math.sqrt(1.0 - abar[i]))
        # Algorithm 2, line 3: z = 0 at t = 1 (i = 0), where c1 = 1 and c2 = 0
        std = math.sqrt(var[i]) if i > 0 else 0.0
        plan.append(make_step(kind, level, c2[i], c1[i], 0.0, std))
    return plan


class Ancestral(Sampler):
    """DDPM ancestral sampling (Ho et al. Alg. 2), VDM's on a T-step grid, SMLD's for NCSN."""

    name = "ancestral"
    specs = (
        OptionSpec(
            "variance", Literal["posterior", "beta"], "posterior",
            "reverse variance: the posterior's sigma_s^2 (1 - SNR_t / SNR_s) or the forward step's (Ho et al. beta_t)",
        ),
        *STEP_OPTIONS,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        if opts["variance"] not in VARIANCES:
            raise StudioError(
                f"sampler 'ancestral': variance = {opts['variance']!r} is not allowed; allowed: {', '.join(VARIANCES)}"
            )

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        schedule, kind, variance = method.schedule, method.prediction, opts["variance"]
        if opts["grid"] == "uniform_t" and schedule.discrete and abs(t_start * schedule.steps - steps) < 1e-6:
            return ddpm_plan(kind, schedule, steps, variance)
        levels = levels_at(schedule, grid_times(schedule, steps, t_start, opts))
        plan = [ancestral_step(kind, t, s, variance) for t, s in zip(levels, levels[1:])]
        return plan + [to_data(kind, levels[-1])]


SAMPLERS.register("ancestral", Ancestral(), description=Ancestral.__doc__)

"""DDIM (Song, Meng & Ermon 2021), eq. 12, between consecutive grid times s < t:

    x_s = alpha_s x0_hat + sqrt(sigma_s^2 - s_eta^2) eps_hat + s_eta z

with ``s_eta^2 = eta^2 sigma_s^2 (1 - SNR(t) / SNR(s))`` (eq. 16 written with the
log-SNR; eta = 0 is deterministic, eta = 1 is the ancestral sampler with the posterior
variance). Nothing in it assumes alpha^2 + sigma^2 = 1, so it serves variance
exploding (NCSN) models too. The last step lands on the data: x0_hat.
"""

from __future__ import annotations

import math
from typing import Any

from ..registry import SAMPLERS
from .base import (
    STEP_OPTIONS, Level, OptionSpec, Sampler, Step, check_number, grid_times, levels_at, make_step,
    posterior_factor, to_data,
)


def ddim_step(kind: str, t: Level, s: Level, eta: float) -> Step:
    noise_var = eta**2 * s.sigma**2 * posterior_factor(t.log_snr, s.log_snr)
    direction = math.sqrt(max(s.sigma**2 - noise_var, 0.0))  # "direction pointing to x_t"
    return make_step(kind, t, 0.0, s.alpha, direction, math.sqrt(noise_var))


class DDIM(Sampler):
    """DDIM (Song, Meng & Ermon 2021, eq. 12): any number of steps, eta = 0 deterministic."""

    name = "ddim"
    specs = (
        OptionSpec("eta", float, 0.0, "noise scale: 0 deterministic, 1 the ancestral sampler (Song et al. eq. 16)"),
        *STEP_OPTIONS,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        check_number(self.name, "eta", opts["eta"], low_closed=True)

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        kind, eta = method.prediction, float(opts["eta"])
        levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
        plan = [ddim_step(kind, t, s, eta) for t, s in zip(levels, levels[1:])]
        return plan + [to_data(kind, levels[-1])]


SAMPLERS.register("ddim", DDIM(), description=DDIM.__doc__)

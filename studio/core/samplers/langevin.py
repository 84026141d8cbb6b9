"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

For noise levels sigma_1 > ... > sigma_L (the schedule's sampling grid) and
``n_steps_each`` steps at each,

    x <- x + alpha_i / 2 * score + sqrt(alpha_i) z,   alpha_i = step_lr * sigma_i^2 / sigma_L^2

with ``score = -eps_hat / sigma_i``. On DDPM and VDM models the levels are the
variance-preserving marginals at the grid times, whose score is the same expression.
An optional final denoising step (Tweedie's formula, ``x + sigma_L^2 score`` on
variance-exploding models, i.e. x0_hat on any) adds one record.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import StudioError
from ..registry import SAMPLERS
from .base import (
    STEP_OPTIONS, OptionSpec, Sampler, Step, check_int, check_number, grid_times, levels_at, make_step, to_data,
)

# step_lr = STEP_RATIO * sigma_L^2 unless given, so alpha_i = STEP_RATIO * sigma_i^2 on
# every schedule (an absolute step tuned for sigma_L = 0.01 diverges on a VDM grid, whose
# sigma_L is ~1e-3). Song & Ermon used 0.2 with 100 steps per level; with 10 a ratio of 1
# mixes enough (checked with exact scores of Gaussians and 8-gaussian mixtures on NCSN,
# DDPM and VDM grids) and stays far below 4, where Langevin on a Gaussian of variance
# >= sigma_i^2 (every noised density's curvature is at most 1 / sigma_i^2) turns unstable.
STEP_RATIO = 1.0


class Langevin(Sampler):
    """NCSN annealed Langevin dynamics (Song & Ermon 2019, Alg. 1): steps = noise levels."""

    name = "langevin"
    specs = (
        OptionSpec("n_steps_each", int, 10, "Langevin steps at each noise level (one record each)"),
        OptionSpec(
            "step_lr", float | None, None,
            "Song & Ermon's eps: alpha_i = step_lr sigma_i^2 / sigma_L^2 (None: sigma_L^2)",
        ),
        OptionSpec("denoise", bool, True, "a last denoising step onto x0_hat (one more record)"),
        *STEP_OPTIONS,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        check_int(self.name, "n_steps_each", opts["n_steps_each"])
        if opts["step_lr"] is not None:
            check_number(self.name, "step_lr", opts["step_lr"], also=" (or None for the default)")
        if not isinstance(opts["denoise"], bool):
            raise StudioError(f"sampler 'langevin': denoise = {opts['denoise']!r} must be true or false")

    def count(self, steps: int, opts: dict[str, Any]) -> int:
        return steps * int(opts["n_steps_each"]) + int(opts["denoise"])

    def grid_index(self, index: int, steps: int, opts: dict[str, Any]) -> int:
        # n_steps_each records per noise level; the denoising record sits on the last level
        return min(index // int(opts["n_steps_each"]), steps - 1)

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        kind = method.prediction
        levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
        sigma_L2 = levels[-1].sigma ** 2
        step_lr = STEP_RATIO * sigma_L2 if opts["step_lr"] is None else float(opts["step_lr"])
        plan = []
        for level in levels:
            alpha_i = step_lr * level.sigma**2 / sigma_L2
            # x + alpha_i / 2 * (-eps / sigma_i) + sqrt(alpha_i) z
            step = make_step(kind, level, 1.0, 0.0, -0.5 * alpha_i / level.sigma, math.sqrt(alpha_i))
            plan += [step] * int(opts["n_steps_each"])
        if opts["denoise"]:
            plan.append(to_data(kind, levels[-1]))
        return plan


SAMPLERS.register("langevin", Langevin(), description=Langevin.__doc__)

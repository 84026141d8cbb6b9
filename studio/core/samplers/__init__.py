"""Reverse-process samplers, each a generator of one :class:`StepRecord` per step so a
viewer can scrub any step and a caller can stop early (docs/INTERFACES.md).

Registered in ``SAMPLERS``: ``ancestral`` (DDPM Alg. 2, VDM's T-step grid, SMLD's for
NCSN), ``ddim`` (eta, any number of steps), ``langevin`` (NCSN annealed Langevin
dynamics); the SDE view (Song et al. 2021, core.sde): ``euler_maruyama``, ``pc``
(predictor-corrector), ``dpmpp_2m_sde`` and ``dpmpp_3m_sde`` (DPM-Solver++(2M) and (3M)
SDE) on the reverse SDE, ``euler``, ``heun`` and ``dpmpp_2m`` (DPM-Solver++(2M)) on the
probability-flow ODE, and ``rk45`` (adaptive dopri5). Every
one serves NCSN, DDPM and VDM models through the reparameterization triangle, on any of
the time grids of grids.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..registry import SAMPLERS
from .adaptive import RK45
from .ancestral import Ancestral
from .base import OptionSpec, Sampler, StepRecord
from .ddim import DDIM
from .langevin import Langevin
from .ode import DPMSolverPP2M, Euler, Heun
from .reverse_sde import DPMSolverPP2MSDE, DPMSolverPP3MSDE, EulerMaruyama, PredictorCorrector

__all__ = [
    "Ancestral", "DDIM", "DPMSolverPP2M", "DPMSolverPP2MSDE", "DPMSolverPP3MSDE", "Euler", "EulerMaruyama", "Heun",
    "Langevin", "OptionSpec",
    "PredictorCorrector", "RK45", "Sampler", "StepRecord", "sample",
]


def sample(
    sampler: str | Sampler,
    method: Any,
    net: nn.Module,
    shape: tuple[int, ...],
    steps: int,
    generator: torch.Generator | None = None,
    x_init: Tensor | None = None,
    t_start: float | None = None,
    **options: Any,
) -> Tensor:
    """Run a sampler (an object or a registered name) to the end; return the sample."""
    if isinstance(sampler, str):
        sampler = SAMPLERS.get(sampler)
    record = None
    for record in sampler(method, net, shape, steps, generator, x_init, t_start, **options):
        pass
    return record.x_next

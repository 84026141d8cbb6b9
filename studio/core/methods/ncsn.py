"""NCSN: noise-conditional score networks (Song & Ermon 2019).

A variance-exploding process ``x~ = x + sigma_i z`` over geometric levels
``sigma_1 > ... > sigma_L``, trained by denoising score matching (eq. 5-6) with the
weighting ``lambda(sigma) = sigma^2``. With the score read as ``s = -eps_hat / sigma``
the weighted objective is plain eps matching:

    lambda(sigma) * 1/2 || s(x~, sigma) + z / sigma ||^2 = 1/2 || eps_hat - z ||^2,

so the network predicts eps (one network output for every family) and the annealed
Langevin sampler reads the score from it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ScheduleError
from ..registry import METHODS
from ..schedules import GeometricSchedule, Schedule
from .base import EpsOnly, LossOutput, Method, randint, randn, sum_dims


class NCSN(Method):
    """Denoising score matching over the discrete noise levels of a geometric schedule."""

    name = "ncsn"
    predictions = ("eps",)

    def __init__(self, schedule: Schedule, prediction: EpsOnly = "eps"):
        if not isinstance(schedule, GeometricSchedule):
            raise ScheduleError(
                f"method 'ncsn' needs a variance-exploding schedule (family 'geometric'), "
                f"got schedule {schedule.family!r}"
            )
        super().__init__(schedule, prediction)
        self.register_buffer("level_times", schedule.sampling_times().float(), persistent=False)

    def loss(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Song & Ermon eq. 6 weighted by sigma^2, the level index drawn uniformly."""
        b = x0.shape[0]
        i = randint(self.schedule.steps, (b,), generator, x0.device)
        t = self.level_times.to(x0.device)[i]
        log_snr = self.schedule.log_snr(t).to(x0.dtype)
        alpha, sigma = self.schedule.alpha_sigma(t)
        alpha, sigma = alpha.to(x0.dtype), sigma.to(x0.dtype)
        z = randn(x0.shape, generator, x0.device, x0.dtype)
        x_t = x0 + sigma.reshape(-1, *[1] * (x0.dim() - 1)) * z
        eps_hat = self.call_net(net, x_t, alpha, sigma, log_snr)
        return LossOutput(0.5 * sum_dims((eps_hat - z) ** 2), log_snr, t)


METHODS.register("ncsn", NCSN, description="NCSN: denoising score matching over geometric noise levels (Song & Ermon 2019)")

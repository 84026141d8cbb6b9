"""Example plugin: the EDM noise levels of Karras et al. (2022), "Elucidating the Design
Space of Diffusion-Based Generative Models", eq. 5.

A variance-exploding process ``x = y + sigma n`` (alpha = 1) whose noise level runs from
``sigma_max`` at t = 1 down to ``sigma_min`` at t = 0 as

    sigma(t) = (sigma_min^(1/rho) + t (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho,

so the schedule's own sampling grid, t_i = 1 - i / (N - 1), is exactly the paper's

    sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,

rho = 7 spending the steps near the data (their table 1 and section 3: sigma_min =
0.002, sigma_max = 80). The studio reads it through its one curve, the log-SNR
``lambda(t) = -2 log sigma(t)``. ``diffusion-studio --plugins plugins schedule karras``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from studio.core.errors import ScheduleError
from studio.core.registry import SCHEDULES
from studio.core.schedules import Schedule


class KarrasSchedule(Schedule):
    """EDM's sigma(t) with rho = 7 between sigma_min and sigma_max (Karras et al. 2022, eq. 5)."""

    family = "karras"
    variance_preserving = False

    # steps: the first-order samplers of the studio need more than the paper's 18 Heun steps
    def __init__(self, steps: int = 40, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0):
        super().__init__(steps)
        values = {"sigma_min": sigma_min, "sigma_max": sigma_max, "rho": rho}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ScheduleError(f"schedule parameter {name} = {value!r} must be a finite number > 0")
        if not sigma_min < sigma_max:
            raise ScheduleError(f"schedule parameter sigma_min = {sigma_min} must be < sigma_max = {sigma_max}")
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)
        self._lo = self.sigma_min ** (1.0 / self.rho)  # sigma^(1/rho) is linear in t
        self._hi = self.sigma_max ** (1.0 / self.rho)

    def params(self) -> dict:
        return {"steps": self.steps, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "rho": self.rho}

    def sigma_of_t(self, t: Tensor) -> Tensor:
        """sigma(t), eq. 5 with i / (N - 1) = 1 - t."""
        t = torch.as_tensor(t)
        return (self._lo + t * (self._hi - self._lo)) ** self.rho

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """The inverse of :meth:`sigma_of_t`, clamped to [0, 1] (noise levels outside
        [sigma_min, sigma_max] sit at the ends)."""
        sigma = torch.as_tensor(sigma)
        return ((sigma ** (1.0 / self.rho) - self._lo) / (self._hi - self._lo)).clamp(0.0, 1.0)

    def log_snr(self, t: Tensor) -> Tensor:
        # alpha = 1: SNR = 1 / sigma^2, lambda = -2 rho log(sigma^(1/rho))
        t = torch.as_tensor(t)
        return -2.0 * self.rho * torch.log(self._lo + t * (self._hi - self._lo))

    def sampling_times(self, n: int | None = None) -> Tensor:
        """t_i = 1 - i / (n - 1): sigma_max first, sigma_min last (eq. 5's grid)."""
        n = self.steps if n is None else int(n)
        if n < 1:
            raise ScheduleError(f"steps = {n} must be >= 1")
        if n == 1:
            return torch.ones(1, dtype=torch.float64)
        return torch.linspace(1.0, 0.0, n, dtype=torch.float64)


SCHEDULES.register("karras", KarrasSchedule, kind="edm")

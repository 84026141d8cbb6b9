"""Example plugin: the shifted cosine log-SNR schedule of "simple diffusion".

Hoogeboom, Heek and Salimans (2023), "simple diffusion: End-to-end diffusion for high
resolution images", section 3.1: the cosine schedule written as a log-SNR,

    lambda(t) = -2 log tan(pi t / 2),

truncated to [logsnr_min, logsnr_max] by mapping t onto [t_min, t_max] (their reference
code), then shifted by 2 log(base / resolution) so that an image of ``resolution``
pixels per side sees the same signal-to-noise at its coarse scale as a ``base``-sized
image does under the plain cosine schedule. With resolution == base it is the cosine
schedule of Nichol & Dhariwal (2021) in log-SNR form (variance preserving).

Drop this file into the plugins folder chosen in the app (or pass the folder to
``studio.plugins.load_plugins``) and "shifted_cosine" appears among the schedules.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from studio.core.errors import ScheduleError
from studio.core.registry import SCHEDULES
from studio.core.schedules import Schedule


class ShiftedCosineSchedule(Schedule):
    """Cosine log-SNR shifted by 2 log(base / resolution) (Hoogeboom et al. 2023)."""

    family = "shifted_cosine"

    def __init__(
        self,
        steps: int = 1000,
        resolution: int = 64,
        base: int = 64,
        logsnr_min: float = -15.0,
        logsnr_max: float = 15.0,
    ):
        super().__init__(steps)
        for name, value in (("resolution", resolution), ("base", base)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScheduleError(f"schedule parameter {name} = {value!r} must be an integer >= 1")
        if not (math.isfinite(logsnr_min) and math.isfinite(logsnr_max) and logsnr_min < logsnr_max):
            raise ScheduleError(
                f"schedule parameters logsnr_min = {logsnr_min} and logsnr_max = {logsnr_max} "
                "must be finite with logsnr_min < logsnr_max"
            )
        self.resolution, self.base = resolution, base
        self.logsnr_min, self.logsnr_max = float(logsnr_min), float(logsnr_max)
        self.shift = 2.0 * math.log(base / resolution)
        # lambda(t_min) = logsnr_max, lambda(t_max) = logsnr_min before the shift
        self.t_min = math.atan(math.exp(-0.5 * self.logsnr_max))
        self.t_max = math.atan(math.exp(-0.5 * self.logsnr_min))

    def params(self) -> dict:
        return {
            "steps": self.steps,
            "resolution": self.resolution,
            "base": self.base,
            "logsnr_min": self.logsnr_min,
            "logsnr_max": self.logsnr_max,
        }

    def log_snr(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        angle = self.t_min + t * (self.t_max - self.t_min)
        return -2.0 * torch.log(torch.tan(angle)) + self.shift


SCHEDULES.register("shifted_cosine", ShiftedCosineSchedule, kind="vdm")

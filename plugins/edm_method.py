"""Example plugin: the EDM training method of Karras et al. (2022), "Elucidating the
Design Space of Diffusion-Based Generative Models" (table 1, "Ours").

The process is variance exploding, ``x = y + sigma n`` (alpha = 1), and the network F is
wrapped in the paper's preconditioning (eq. 7) into a denoiser

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)),
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),
    c_out  = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
    c_in   = 1 / sqrt(sigma^2 + sigma_data^2),
    c_noise = ln(sigma) / 4,

trained at log-normal noise levels ``ln sigma ~ N(P_mean, P_std^2)`` (P_mean = -1.2,
P_std = 1.2) with the loss weight ``lambda(sigma) = (sigma^2 + sigma_data^2) /
(sigma sigma_data)^2`` (eq. 8), which makes F's effective target unit-variance at every
noise level. ``sigma_data`` is the data's standard deviation: 0.5 for images in [-1, 1]
(the paper's), 1 for the studio's standardised 2-D points.

How it plugs into the studio (docs/INTERFACES.md, core.methods): the wrapper is the
method's :meth:`wrap_network`, so the engine builds, trains, saves and loads the wrapped
network, and every sampler calls it as usual, ``net(x * c_in_studio, log_snr)``, reading
its output as ``prediction = "x0"`` (D is the denoised estimate). The studio's c_in is
``1 / sqrt(1 + sigma^2)`` on a variance-exploding process; the wrapper undoes it and
applies EDM's own. c_noise needs nothing: every studio network embeds ``log_snr / 8``,
which is ``-ln(sigma) / 4 = -c_noise`` (core.networks.embedding). Sampling uses the NCSN
samplers (``sampler_family = "ncsn"``: ancestral, DDIM, Langevin serve any variance
exploding schedule); DDIM with eta = 0 is Euler's method on EDM's probability-flow ODE.
The ``karras`` schedule plugin gives the paper's noise levels and is the default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from studio.core.errors import ConfigError, ScheduleError
from studio.core.methods.base import LossOutput, Method, mean_dims, randn
from studio.core.parameterization import expand_like
from studio.core.registry import METHODS
from studio.core.samplers.grids import time_of_log_snr
from studio.core.schedules import Schedule


# --- the preconditioning (Karras et al. 2022, table 1) -----------------------------------
def c_skip(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma * sigma_data / torch.sqrt(sigma**2 + sigma_data**2)


def c_in(sigma: Tensor, sigma_data: float) -> Tensor:
    return torch.rsqrt(sigma**2 + sigma_data**2)


def c_noise(sigma: Tensor) -> Tensor:
    return torch.log(sigma) / 4.0


def loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2 (eq. 8)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sigma_of_log_snr(log_snr: Tensor) -> Tensor:
    """Variance exploding: SNR = 1 / sigma^2."""
    return torch.exp(-0.5 * log_snr)


class Preconditioned(nn.Module):
    """D(x; sigma) around a studio network F, called as the samplers call any network."""

    def __init__(self, net: nn.Module, sigma_data: float):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x_in: Tensor, log_snr: Tensor) -> Tensor:
        log_snr = torch.as_tensor(log_snr, device=x_in.device, dtype=x_in.dtype).reshape(-1).expand(x_in.shape[0])
        sigma = expand_like(sigma_of_log_snr(log_snr), x_in)
        # the studio scaled x by 1 / sqrt(alpha^2 + sigma^2) = 1 / sqrt(1 + sigma^2); undo it
        x = x_in * torch.sqrt(1.0 + sigma**2)
        sd = self.sigma_data
        # c_noise: the network embeds log_snr / 8 = -c_noise(sigma), so log_snr goes in as is
        out = self.net(x * c_in(sigma, sd), log_snr)
        return c_skip(sigma, sd) * x + c_out(sigma, sd) * out

    def extra_repr(self) -> str:
        return f"sigma_data={self.sigma_data}"


def time_of_sigma(schedule: Schedule, sigma: Tensor) -> Tensor:
    """Schedule time of each noise level, for the loss-by-noise-level plots: the
    schedule's own inverse when it has one (karras), else bisection on its strictly
    decreasing log-SNR; levels beyond the schedule's range sit at t = 0 or 1."""
    if hasattr(schedule, "t_of_sigma"):
        return schedule.t_of_sigma(sigma)
    lam = (-2.0 * torch.log(sigma)).detach().double().cpu()
    return time_of_log_snr(schedule, lam, 0.0, 1.0).to(sigma)


class EDM(Method):
    """EDM (Karras et al. 2022): preconditioned denoiser, log-normal noise levels, lambda(sigma) weighting."""

    name = "edm"
    predictions = ("x0",)  # the wrapped network is the denoiser D
    sampler_family = "ncsn"  # variance exploding: the NCSN samplers read it

    def __init__(self, schedule: Schedule, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2):
        if schedule.variance_preserving:
            raise ScheduleError(
                f"method 'edm' needs a variance-exploding schedule (karras, geometric), got {schedule.family!r}"
            )
        for key, value, positive in (("sigma_data", sigma_data, True), ("p_mean", p_mean, False), ("p_std", p_std, True)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (positive and value <= 0):
                raise ConfigError(f"method 'edm': {key} = {value!r} must be a finite number" + (" > 0" if positive else ""))
        super().__init__(schedule, "x0")
        self.sigma_data, self.p_mean, self.p_std = float(sigma_data), float(p_mean), float(p_std)

    def wrap_network(self, net: nn.Module) -> nn.Module:
        return net if isinstance(getattr(net, "module", net), Preconditioned) else Preconditioned(net, self.sigma_data)

    def call_net(self, net: nn.Module, x_t: Tensor, alpha: Tensor, sigma: Tensor, log_snr: Tensor) -> Tensor:
        # a bare network (a test building one by hand) gets the same preconditioning
        return super().call_net(self.wrap_network(net), x_t, alpha, sigma, log_snr)

    def loss(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """lambda(sigma) ||D(y + sigma n; sigma) - y||^2 with ln sigma ~ N(P_mean, P_std^2)
        (eq. 8 and table 1), mean over dimensions."""
        b = x0.shape[0]
        ln_sigma = self.p_mean + self.p_std * randn((b,), generator, x0.device, x0.dtype)
        sigma = torch.exp(ln_sigma)
        n = randn(x0.shape, generator, x0.device, x0.dtype)
        x_t = x0 + expand_like(sigma, x0) * n
        log_snr = -2.0 * ln_sigma
        denoised = self.call_net(net, x_t, torch.ones_like(sigma), sigma, log_snr)
        loss = loss_weight(sigma, self.sigma_data) * mean_dims((denoised - x0) ** 2)
        return LossOutput(loss, log_snr, time_of_sigma(self.schedule, sigma))

    def extra_repr(self) -> str:
        return f"sigma_data={self.sigma_data}, p_mean={self.p_mean}, p_std={self.p_std}"


METHODS.register("edm", EDM, description="EDM: preconditioned denoiser, log-normal noise levels (Karras et al. 2022)")

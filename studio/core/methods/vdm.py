"""VDM: variational diffusion models (Kingma et al. 2021).

Continuous time t in [0, 1], ``z_t = alpha_t x + sigma_t eps`` with
``alpha_t^2 = sigmoid(-gamma(t))``, ``sigma_t^2 = sigmoid(gamma(t))`` (eq. 3-4), gamma
fixed or learned. The negative ELBO per sample (eq. 11, 17) is

    -log p(x) <= KL(q(z_1 | x) || N(0, I))                       prior
               + E_{q(z_0 | x)}[-log p(x | z_0)]                  reconstruction
               + 1/2 E_{t ~ U(0,1), eps}[gamma'(t) ||eps - eps_hat(z_t; t)||^2]   diffusion

with gamma'(t) by autograd (so any schedule, learned ones too), t drawn by VDM's
low-discrepancy (antithetic) sampler, and the decoder p(x | z_0) = prod_i p(x_i | z_0,i)
with p(x_i | z_0,i) proportional to q(z_0,i | x_i) (appendix C): for continuous data
that is N(x; z_0 / alpha_0, sigma_0^2 / alpha_0^2), whose expectation under q is exact,
and for 8-bit data in [-1, 1] a softmax over the 256 values.

A learned schedule trains jointly with the network through this ELBO (the gradient
reaches gamma through z_t, gamma'(t), the prior and the decoder); VDM's
variance-minimising gradient for the schedule's shape (appendix I.2) is not used.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ScheduleError
from ..metrics import bits_per_dim
from ..registry import METHODS
from ..schedules import Schedule
from ..parameterization import to_x0_eps
from .base import DATA_KINDS, DataKind, LossOutput, Method, check_choice, rand, randn, sum_dims
from .gaussians import LOG_2PI, normal_kl


# The network's output: eps (VDM's own), or v (Salimans & Ho 2022), read as eps_hat = sigma
# z_t + alpha v_hat inside the same ELBO. The bound is a function of eps_hat alone, so it is
# unchanged; what changes is where the net's error lands: with eps, x0_hat = (z_t - sigma
# eps_hat) / alpha multiplies it by sigma / alpha (~55 at gamma_max = 8), which the
# deterministic samplers carry from the tails of the prior to the data; with v, x0_hat =
# alpha z_t - sigma v_hat has no 1 / alpha. (x0 is not offered: eps_hat = (z_t - alpha
# x0_hat) / sigma would put 1 / sigma_0 ~ 150 into the ELBO's own term at gamma_min = -10.)
VDMPrediction = Literal["eps", "v"]


class VDM(Method):
    """The continuous-time VDM ELBO on any variance-preserving schedule."""

    name = "vdm"
    predictions = get_args(VDMPrediction)

    def __init__(self, schedule: Schedule, prediction: VDMPrediction = "eps", data: DataKind = "continuous", antithetic: bool = True):
        if not schedule.variance_preserving:
            raise ScheduleError(
                f"method 'vdm' needs a variance-preserving schedule, got {schedule.family!r} (variance exploding)"
            )
        with torch.no_grad():
            ends = schedule.gamma(torch.tensor([0.0, 1.0]))
        if not torch.isfinite(ends).all():
            raise ScheduleError(
                f"method 'vdm' needs a finite log-SNR at t = 0 and t = 1; schedule {schedule.family!r} has "
                f"gamma(0) = {float(ends[0])}, gamma(1) = {float(ends[1])} (zero terminal SNR is not allowed)"
            )
        super().__init__(schedule, prediction)
        self.data = check_choice(self.name, "data", data, DATA_KINDS)
        self.antithetic = bool(antithetic)

    # --- time sampling ------------------------------------------------------------------
    def sample_times(self, b: int, generator: torch.Generator | None, device) -> Tensor:
        """t ~ U(0, 1) per sample; antithetic: one uniform u shared as t_i = (u + i / b)
        mod 1, which lowers the variance of the diffusion term (VDM section 3.5)."""
        if self.antithetic:
            u = rand((1,), generator, device)
            return torch.remainder(u + torch.arange(b, device=device) / b, 1.0)
        return rand((b,), generator, device)

    # --- the three terms ---------------------------------------------------------------------
    def gamma_and_slope(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """gamma(t) and gamma'(t) by autograd; the slope keeps its graph when the
        schedule is learned so that its parameters get the gradient of the ELBO."""
        learned = self.schedule.learned and torch.is_grad_enabled()
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            gamma = self.schedule.gamma(t)
            (slope,) = torch.autograd.grad(gamma.sum(), t, create_graph=learned)
        if not learned:
            gamma, slope = gamma.detach(), slope.detach()
        return gamma, slope

    def diffusion_loss(self, net: nn.Module, x: Tensor, t: Tensor, generator: torch.Generator | None) -> Tensor:
        """1/2 gamma'(t) ||eps - eps_hat(z_t; t)||^2 per sample, nats (VDM eq. 17)."""
        gamma, slope = self.gamma_and_slope(t)
        gamma, slope = gamma.to(x.dtype), slope.to(x.dtype)
        shape = (-1,) + (1,) * (x.dim() - 1)
        alpha, sigma = torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()
        eps = randn(x.shape, generator, x.device, x.dtype)
        z_t = alpha.reshape(shape) * x + sigma.reshape(shape) * eps
        out = self.call_net(net, z_t, alpha, sigma, -gamma)
        eps_hat = out if self.prediction == "eps" else to_x0_eps(self.prediction, out, z_t, alpha, sigma).eps
        return 0.5 * slope * sum_dims((eps - eps_hat) ** 2)

    def prior_loss(self, x: Tensor) -> Tensor:
        """KL(q(z_1 | x) || N(0, I)) per sample, nats."""
        g1 = self.schedule.gamma(torch.ones(1, device=x.device)).to(x.dtype)
        var = torch.sigmoid(g1).expand_as(x)
        mean = torch.sigmoid(-g1).sqrt() * x
        return sum_dims(normal_kl(mean, var.log(), torch.zeros_like(x), torch.zeros_like(x)))

    def reconstruction_loss(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """E_{q(z_0 | x)}[-log p(x | z_0)] per sample, nats (VDM appendix C)."""
        g0 = self.schedule.gamma(torch.zeros(1, device=x.device)).to(x.dtype)
        if self.data == "continuous":
            # p(x | z_0) = N(x; z_0 / alpha_0, e^gamma_0): x - z_0 / alpha_0 = -e^(gamma_0 / 2) eps,
            # so the expectation is 1/2 (log 2 pi + gamma_0 + 1) per dimension, exactly
            per_dim = 0.5 * (LOG_2PI + g0 + 1.0)
            return per_dim.expand(x.shape[0]) * x[0].numel()
        # 8-bit: z_0 / alpha_0 = x + e^(gamma_0 / 2) eps; softmax over the 256 values v_k
        # with logits -1/2 (z_0 / alpha_0 - v_k)^2 e^(-gamma_0) (the official VDM decoder)
        values = torch.linspace(-1.0, 1.0, 256, device=x.device, dtype=x.dtype)
        k = ((x.clamp(-1, 1) + 1.0) * 127.5).round().long()
        eps = randn(x.shape, generator, x.device, x.dtype)
        z = values[k] + torch.exp(0.5 * g0) * eps
        logits = -0.5 * (z[..., None] - values) ** 2 * torch.exp(-g0)
        logp = torch.log_softmax(logits, dim=-1).gather(-1, k[..., None])[..., 0]
        return -sum_dims(logp)

    def elbo_terms(self, net: nn.Module, x: Tensor, t: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        diffusion = self.diffusion_loss(net, x, t, generator)
        prior = self.prior_loss(x)
        recon = self.reconstruction_loss(x, generator)
        return {"total": diffusion + prior + recon, "diffusion": diffusion, "prior": prior, "reconstruction": recon}

    # --- the method interface -----------------------------------------------------------------
    def loss(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """The negative ELBO per sample in bits/dim, and its three terms (bits/dim)."""
        t = self.sample_times(x0.shape[0], generator, x0.device)
        nats = self.elbo_terms(net, x0, t, generator)
        dim = x0[0].numel()
        terms = {k: bits_per_dim(v, dim) for k, v in nats.items() if k != "total"}
        log_snr = -self.schedule.gamma(t).detach().to(x0.dtype)
        return LossOutput(bits_per_dim(nats["total"], dim), log_snr, t.to(x0.dtype), terms)

    def nll_bound(
        self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None, n_t: int = 1
    ) -> dict[str, Tensor]:
        """The negative ELBO per sample in nats (``total``, ``diffusion``, ``prior``,
        ``reconstruction``), the diffusion term averaged over ``n_t`` times per sample,
        stratified as (u + j / n_t) mod 1."""
        if isinstance(n_t, bool) or not isinstance(n_t, int) or n_t < 1:
            raise ConfigError(f"method 'vdm': nll_bound n_t = {n_t!r} must be an integer >= 1")
        b = x0.shape[0]
        with torch.no_grad():
            u = rand((b, 1), generator, x0.device)
            t = torch.remainder(u + torch.arange(n_t, device=x0.device) / n_t, 1.0).reshape(-1)
            x = x0.repeat_interleave(n_t, dim=0)
            diffusion = self.diffusion_loss(net, x, t, generator).reshape(b, n_t).mean(1)
            prior = self.prior_loss(x0)
            recon = self.reconstruction_loss(x0, generator)
        return {"total": diffusion + prior + recon, "diffusion": diffusion, "prior": prior, "reconstruction": recon}


METHODS.register("vdm", VDM, description="VDM: continuous-time ELBO in bits/dim (Kingma et al. 2021)")

"""DDPM: denoising diffusion probabilistic models (Ho et al. 2020).

A T-step variance-preserving chain ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``
(eq. 4). Training uses L_simple (eq. 14) with an eps, x0 or v target (v = alpha eps -
sigma x0, Salimans & Ho 2022); evaluation has the true variational bound (eq. 5)

    L_vlb = L_T + sum_{t=2}^T L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I)),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),
    L_0     = -log p(x_0 | x_1),

with the reverse variance sigma_t^2 = beta~_t ("posterior") or beta_t ("beta") and the
reverse mean mu~_t(x_t, x0_hat) (eq. 7 with the predicted x0, equivalently eq. 11).
Step index ``i`` (0-based) is the paper's ``t = i + 1``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ScheduleError
from ..parameterization import Prediction, from_x0_eps, q_sample, to_x0_eps
from ..registry import METHODS
from ..schedules import DiscreteSchedule, Schedule, discretize
from .base import DATA_KINDS, DataKind, LossOutput, Method, check_choice, mean_dims, randint, randn, sum_dims
from .gaussians import discretized_gaussian_nll, normal_kl, normal_nll

Variance = Literal["posterior", "beta"]
VARIANCES = get_args(Variance)
DDPMPrediction = Literal["eps", "x0", "v"]


class DDPM(Method):
    """DDPM on any variance-preserving schedule (continuous ones are discretized to
    ``steps``, default the schedule's own)."""

    name = "ddpm"
    predictions = get_args(DDPMPrediction)

    def __init__(
        self,
        schedule: Schedule,
        prediction: DDPMPrediction = "eps",
        variance: Variance = "posterior",
        data: DataKind = "continuous",
        steps: int | None = None,
    ):
        if not schedule.variance_preserving:
            raise ScheduleError(
                f"method 'ddpm' needs a variance-preserving schedule, got {schedule.family!r} (variance exploding)"
            )
        super().__init__(discretize(schedule, steps), prediction)
        self.variance = check_choice(self.name, "variance", variance, VARIANCES)
        self.data = check_choice(self.name, "data", data, DATA_KINDS)
        sched: DiscreteSchedule = self.schedule
        if float(sched.alpha_bar[-1]) == 0.0 and prediction != "v":
            raise ConfigError(
                f"method 'ddpm': schedule {sched.family!r} has zero terminal SNR (alpha_bar_T = 0), where "
                f"prediction {prediction!r} cannot give x0; use prediction = 'v'"
            )
        # the reverse-process log variance per step (Ho et al. section 3.2): beta~_t, with
        # beta~_1 = 0 replaced by beta~_2 as in their code, or beta_t
        if self.variance == "posterior":
            logvar = sched.posterior_log_variance_clipped.clone()
        else:
            logvar = torch.log(sched.betas)
        self.register_buffer("model_log_variance", logvar, persistent=False)

    @property
    def steps(self) -> int:
        return self.schedule.steps

    # --- per-step quantities --------------------------------------------------------------
    def _at(self, name: str, i: Tensor, like: Tensor) -> Tensor:
        """A per-step buffer (of the method or its schedule) at step indices ``i``."""
        values = self.model_log_variance if name == "model_log_variance" else getattr(self.schedule, name)
        return values.to(like.device)[i].to(like.dtype)

    def alpha_sigma_at(self, i: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        abar = self._at("alpha_bar", i, like)
        return abar.sqrt(), (1.0 - abar).sqrt()

    def net_at(self, net: nn.Module, x_t: Tensor, i: Tensor):
        """Network output and its (x0, eps) at step indices ``i``."""
        alpha, sigma = self.alpha_sigma_at(i, x_t)
        log_snr = self._at("log_snr_steps", i, x_t)
        out = self.call_net(net, x_t, alpha, sigma, log_snr)
        return out, to_x0_eps(self.prediction, out, x_t, alpha, sigma)

    # --- training -------------------------------------------------------------------------
    def loss(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """L_simple (Ho et al. eq. 14), t ~ Uniform{1..T}, regressing the prediction's
        own target; mean over dimensions."""
        b = x0.shape[0]
        i = randint(self.steps, (b,), generator, x0.device)
        eps = randn(x0.shape, generator, x0.device, x0.dtype)
        alpha, sigma = self.alpha_sigma_at(i, x0)
        x_t = q_sample(x0, eps, alpha, sigma)
        out = self.call_net(net, x_t, alpha, sigma, self._at("log_snr_steps", i, x0))
        target = from_x0_eps(self.prediction, Prediction(x0, eps), alpha, sigma)
        t = self.schedule.step_time(i).to(x0.device, x0.dtype)
        return LossOutput(mean_dims((out - target) ** 2), self._at("log_snr_steps", i, x0), t)

    # --- the variational bound --------------------------------------------------------------
    def prior_kl(self, x0: Tensor) -> Tensor:
        """L_T = KL(q(x_T | x_0) || N(0, I)) per sample, nats (0 for zero terminal SNR)."""
        abar = float(self.schedule.alpha_bar[-1])
        mean = math.sqrt(abar) * x0
        var = torch.full_like(x0, 1.0 - abar)
        return sum_dims(normal_kl(mean, var.log(), torch.zeros_like(x0), torch.zeros_like(x0)))

    def posterior_mean(self, x0: Tensor, x_t: Tensor, i: Tensor) -> Tensor:
        """mu~_t(x_t, x_0) = c1 x_0 + c2 x_t (Ho et al. eq. 7)."""
        c1 = self._at("posterior_mean_coef1", i, x0).reshape(-1, *[1] * (x0.dim() - 1))
        c2 = self._at("posterior_mean_coef2", i, x0).reshape(-1, *[1] * (x0.dim() - 1))
        return c1 * x0 + c2 * x_t

    def model_mean(self, net: nn.Module, x_t: Tensor, i: Tensor) -> Tensor:
        """The reverse mean: mu~_t at the predicted x0 (clipped to [-1, 1] for 8-bit data)."""
        _, pred = self.net_at(net, x_t, i)
        x0_hat = pred.x0.clamp(-1.0, 1.0) if self.data == "uint8" else pred.x0
        return self.posterior_mean(x0_hat, x_t, i)

    def term(self, net: nn.Module, x0: Tensor, i: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """L_{t-1} at step indices ``i`` >= 1 (t >= 2), and L_0 where ``i`` = 0; per sample, nats."""
        eps = randn(x0.shape, generator, x0.device, x0.dtype)
        alpha, sigma = self.alpha_sigma_at(i, x0)
        x_t = q_sample(x0, eps, alpha, sigma)
        mean = self.model_mean(net, x_t, i)
        logvar = self._at("model_log_variance", i, x0).reshape(-1, *[1] * (x0.dim() - 1)).expand_as(x0)
        # L_{t-1}: KL between Gaussians in closed form (Ho et al. eq. 5)
        true_mean = self.posterior_mean(x0, x_t, i)
        true_logvar = self._at("posterior_log_variance_clipped", i, x0).reshape(-1, *[1] * (x0.dim() - 1)).expand_as(x0)
        kl = sum_dims(normal_kl(true_mean, true_logvar, mean, logvar))
        # L_0: the decoder, discretized (eq. 13) for 8-bit data, a density otherwise
        if self.data == "uint8":
            nll = sum_dims(discretized_gaussian_nll(x0, mean, 0.5 * logvar))
        else:
            nll = sum_dims(normal_nll(x0, mean, logvar))
        return torch.where(i == 0, nll, kl)

    def nll_bound(
        self,
        net: nn.Module,
        x0: Tensor,
        generator: torch.Generator | None = None,
        exact: bool | None = None,
        n_t: int = 1,
    ) -> dict[str, Tensor]:
        """L_vlb per sample in nats: ``total``, ``prior`` (L_T), ``diffusion``
        (sum_{t=2}^T L_{t-1}) and ``reconstruction`` (L_0).

        ``exact=True`` sums all T terms (T network calls; default when T <= 100).
        Otherwise the diffusion sum is estimated without bias as
        (T - 1) * mean of ``n_t`` terms at t ~ Uniform{2..T}, and L_0 is computed
        exactly (Ho et al.'s L_T + T E_t[L_t] with the t = 1 term taken out of the draw,
        which only lowers the variance).
        """
        exact = self.steps <= 100 if exact is None else bool(exact)
        b = x0.shape[0]
        with torch.no_grad():
            prior = self.prior_kl(x0)
            zero = torch.zeros(b, dtype=torch.long, device=x0.device)
            recon = self.term(net, x0, zero, generator)
            if self.steps == 1:
                diffusion = torch.zeros_like(prior)
            elif exact:
                diffusion = sum(self.term(net, x0, zero + k, generator) for k in range(1, self.steps))
            else:
                if isinstance(n_t, bool) or not isinstance(n_t, int) or n_t < 1:
                    raise ConfigError(f"method 'ddpm': nll_bound n_t = {n_t!r} must be an integer >= 1")
                diffusion = torch.zeros_like(prior)
                for _ in range(n_t):
                    i = 1 + randint(self.steps - 1, (b,), generator, x0.device)
                    diffusion = diffusion + self.term(net, x0, i, generator)
                diffusion = diffusion * (self.steps - 1) / n_t
        return {"total": prior + diffusion + recon, "prior": prior, "diffusion": diffusion, "reconstruction": recon}


METHODS.register("ddpm", DDPM, description="DDPM: L_simple training, L_vlb evaluation (Ho et al. 2020)")

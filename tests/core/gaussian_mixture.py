"""An exact denoiser for data from a Gaussian mixture, at every noise level in closed form.

Data ``x0 ~ sum_k pi_k N(m_k, s^2 I)``; at ``x_t = alpha x0 + sigma eps`` the marginal is
``sum_k pi_k N(alpha m_k, v I)`` with ``v = alpha^2 s^2 + sigma^2``, and with the
responsibilities ``r_k(x_t)`` of that mixture,
``E[x0 | x_t] = sum_k r_k (m_k + alpha s^2 (x_t - alpha m_k) / v)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from studio.core.parameterization import Prediction, from_x0_eps

# four components in 2-D, unequal weights, overlapping a little
MEANS = torch.tensor([[1.5, 0.0], [-1.0, 1.2], [-0.5, -1.5], [0.3, 0.4]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.35, 0.25, 0.25, 0.15], dtype=torch.float64)
STD = 0.35


def alpha_sigma(log_snr: torch.Tensor, vp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if vp:
        return torch.sigmoid(log_snr).sqrt(), torch.sigmoid(-log_snr).sqrt()
    return torch.ones_like(log_snr), torch.exp(-0.5 * log_snr)


def log_density(x: torch.Tensor, alpha: float = 1.0, sigma: float = 0.0) -> torch.Tensor:
    """log q(x_t) of the noised mixture (nats, per sample; alpha = 1, sigma = 0: the data)."""
    x = x.double()
    v = alpha**2 * STD**2 + sigma**2
    d = x.shape[1]
    sq = ((x[:, None, :] - alpha * MEANS[None]) ** 2).sum(-1)
    comp = -0.5 * sq / v - 0.5 * d * math.log(2 * math.pi * v)
    return torch.logsumexp(comp + WEIGHTS.log(), dim=1)


def draw(n: int, alpha: float = 1.0, sigma: float = 0.0, seed: int = 0) -> torch.Tensor:
    """n draws of x_t (float64)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(WEIGHTS, n, replacement=True, generator=g)
    x0 = MEANS[k] + STD * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return alpha * x0 + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)


class MixtureDenoiser(nn.Module):
    """The exact prediction as a network: takes the method's input x_t * c_in and the
    log-SNR, returns the method's prediction kind (computed in float64)."""

    def __init__(self, variance_preserving: bool, prediction: str = "eps"):
        super().__init__()
        self.vp, self.prediction = variance_preserving, prediction

    def forward(self, x_in: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        alpha, sigma = alpha_sigma(log_snr.double()[:, None], self.vp)
        x = x_in.double() * (alpha**2 + sigma**2).sqrt()  # undo c_in
        v = alpha**2 * STD**2 + sigma**2  # (B, 1)
        diff = x[:, None, :] - alpha[:, None] * MEANS[None]  # (B, K, 2)
        logits = -0.5 * (diff**2).sum(-1) / v + WEIGHTS.log()
        r = torch.softmax(logits, dim=1)  # responsibilities (B, K)
        post = MEANS[None] + (alpha * STD**2 / v)[:, None] * diff  # E[x0 | x_t, k]
        x0 = (r[..., None] * post).sum(1)
        eps = (x - alpha * x0) / sigma
        return from_x0_eps(self.prediction, Prediction(x0, eps), alpha[:, 0], sigma[:, 0]).to(x_in.dtype)

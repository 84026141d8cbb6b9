"""Closed forms for Gaussians that the likelihood bounds are made of, per element
(the caller sums over dimensions)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats, elementwise
    (the closed form Ho et al. 2020 use for L_{t-1}, eq. 5)."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def normal_nll(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """-log N(x; mean, e^logvar) in nats, elementwise."""
    return 0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def standard_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_nll(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int = 256) -> Tensor:
    """-log of the discretized Gaussian decoder (Ho et al. 2020, eq. 13), elementwise:
    the mass of N(mean, e^(2 log_scale)) on the bin of width 2 / (levels - 1) around x,
    for x on the grid of ``levels`` values in [-1, 1]; the edge bins extend to +-inf."""
    half = 1.0 / (levels - 1)
    inv = torch.exp(-log_scale)
    upper = standard_normal_cdf((x - mean + half) * inv)
    lower = standard_normal_cdf((x - mean - half) * inv)
    upper = torch.where(x > 1.0 - 1e-3, torch.ones_like(upper), upper)
    lower = torch.where(x < -1.0 + 1e-3, torch.zeros_like(lower), lower)
    # far in a tail the difference of cdfs underflows: use the density times the bin
    # width there (as PixelCNN++ does), which is accurate where the bin is narrow
    mass = upper - lower
    log_mass = torch.where(
        mass > 1e-12,
        torch.log(mass.clamp_min(1e-12)),
        -normal_nll(x, mean, 2.0 * log_scale) + math.log(2 * half),
    )
    return -log_mass

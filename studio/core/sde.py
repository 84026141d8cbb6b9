"""The SDE view of every schedule (Song et al. 2021, "Score-Based Generative Modeling
through Stochastic Differential Equations").

A Gaussian diffusion ``x_t = alpha_t x_0 + sigma_t eps`` with log-SNR
``lambda(t) = log(alpha_t^2 / sigma_t^2)`` is the marginal of the linear forward SDE

    dx = f(t) x dt + g(t) dw,   f = d log alpha / dt,   g^2 = d sigma^2 / dt - 2 f sigma^2 = -sigma^2 dlambda/dt

(Song et al. eq. 5-6 and appendix B; Kingma et al. 2021 appendix). Both come from the
schedule's own log-SNR and its derivative (autograd), so custom, learned and plugin
schedules get an SDE for free. Variance preserving: alpha^2 = sigmoid(lambda), so
``f = sigma^2 lambda' / 2`` (VP SDE: f = -beta / 2, g^2 = beta); variance exploding:
alpha = 1, f = 0, ``g^2 = d sigma^2 / dt`` (VE SDE).

With the score ``s = -(x - alpha x0_hat) / sigma^2`` the reverse-time SDE (eq. 6) is
``dx = [f x - g^2 s] dt + g dw_bar`` and the probability-flow ODE (eq. 13)
``dx/dt = f x - g^2 s / 2``. Written with ``k = -lambda' / 2 = g^2 / (2 sigma^2)`` (finite
where sigma -> 0) the ODE drift is ``(f + k) x - k alpha x0_hat`` (Karras et al. 2022,
Algorithm 1 with s(t) = alpha_t, sigma(t) = sigma_t / alpha_t).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .schedules import Schedule


class SDECoefficients(NamedTuple):
    """f, g^2 and the PF-ODE rate k = -lambda'/2 at times t (float64 tensors)."""

    f: Tensor
    g2: Tensor
    k: Tensor
    log_snr: Tensor
    alpha: Tensor
    sigma: Tensor


def log_snr_and_slope(schedule: Schedule, t: Tensor, side: int = -1) -> tuple[Tensor, Tensor]:
    """lambda(t) and dlambda/dt (float64, CPU): by autograd through the schedule (only
    ``t`` requires grad; a learned schedule is not trained here), and in closed form for
    a discrete (DDPM) schedule, whose log-SNR is piecewise linear through its steps
    (schedules.DiscreteSchedule): the slope of the segment below ``t`` (``side = -1``,
    toward the data) or above it (``side = +1``), so a solver's step from t down to s uses
    the slopes of the segments it crosses, also where t or s is a knot."""
    t = torch.as_tensor(t, dtype=torch.float64)
    device = next(iter([*schedule.parameters(), *schedule.buffers()]), torch.empty(0)).device
    if schedule.discrete and schedule.steps > 1:
        T, lam_steps = schedule.steps, schedule.log_snr_steps.double().cpu()
        pos = t * T - 1.0  # step index of t (knots at t = (i + 1) / T)
        lo = (torch.ceil(pos) - 1 if side < 0 else torch.floor(pos)).clamp(0, T - 2).long()
        with torch.no_grad():
            lam = schedule.log_snr(t.to(device)).double().cpu()
        return lam, (lam_steps[lo + 1] - lam_steps[lo]) * T
    with torch.enable_grad():
        t = t.detach().to(device=device).requires_grad_(True)
        lam = schedule.log_snr(t)
        (slope,) = torch.autograd.grad(lam.sum(), t)
    return lam.detach().double().cpu(), slope.double().cpu()


def sde_coefficients(schedule: Schedule, t: Tensor, side: int = -1) -> SDECoefficients:
    """The forward SDE's ``f(t)`` and ``g(t)^2`` at ``t`` (module docstring; ``side``
    picks a discrete schedule's segment, see :func:`log_snr_and_slope`)."""
    lam, slope = log_snr_and_slope(schedule, torch.as_tensor(t, dtype=torch.float64), side)
    if schedule.variance_preserving:
        alpha2, sigma2 = torch.sigmoid(lam), torch.sigmoid(-lam)
        f = 0.5 * sigma2 * slope  # d/dt 0.5 log sigmoid(lambda)
    else:
        alpha2, sigma2 = torch.ones_like(lam), torch.exp(-lam)
        f = torch.zeros_like(lam)
    k = -0.5 * slope
    return SDECoefficients(f, 2.0 * k * sigma2, k, lam, alpha2.sqrt(), sigma2.sqrt())


def reverse_sde_drift(x: Tensor, score: Tensor, c: SDECoefficients) -> Tensor:
    """Song et al. eq. 6: f x - g^2 score (time runs backwards: dt < 0)."""
    return torch.add(float(c.f) * x, score, alpha=-float(c.g2))


def probability_flow_drift(x: Tensor, score: Tensor, c: SDECoefficients) -> Tensor:
    """Song et al. eq. 13: f x - g^2 score / 2."""
    return torch.add(float(c.f) * x, score, alpha=-0.5 * float(c.g2))

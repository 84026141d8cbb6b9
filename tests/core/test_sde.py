"""core.sde: the forward SDE of every schedule against Song et al.'s closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from studio.core.schedules import Schedule, make_schedule
from studio.core.sde import probability_flow_drift, reverse_sde_drift, sde_coefficients

BETA_MIN, BETA_MAX = 0.1, 20.0
T = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)


class ContinuousVP(Schedule):
    """Song et al.'s VP SDE with linear beta(t), as a schedule (eq. 33):
    log alpha^2 = -t^2 (beta_max - beta_min) / 2 - t beta_min."""

    family = "test_vp"

    def __init__(self):
        super().__init__(1000)

    def log_snr(self, t):
        log_a2 = -0.5 * t**2 * (BETA_MAX - BETA_MIN) - t * BETA_MIN
        return log_a2 - torch.log(-torch.expm1(log_a2))


def beta(t):
    return BETA_MIN + t * (BETA_MAX - BETA_MIN)


def test_vp_sde_closed_form():
    """VP SDE (Song et al. eq. 11): f = -beta(t) / 2, g^2 = beta(t)."""
    c = sde_coefficients(ContinuousVP(), T)
    assert torch.allclose(c.f, -0.5 * beta(T), rtol=1e-9)
    assert torch.allclose(c.g2, beta(T), rtol=1e-9)


def test_ddpm_linear_schedule_is_the_discretised_vp_sde():
    """Ho et al.'s linear betas (1e-4 .. 0.02, T = 1000) are beta(t) / T of the VP SDE with
    beta_min 0.1, beta_max 20 (Song et al. appendix B): f and g^2 of the piecewise-linear
    log-SNR match to within a percent."""
    c = sde_coefficients(make_schedule("linear", steps=1000), T)
    assert torch.allclose(c.f, -0.5 * beta(T), rtol=0.01)
    assert torch.allclose(c.g2, beta(T), rtol=0.01)


def test_ve_sde_closed_form():
    """VE SDE (Song et al. eq. 9 and 30): sigma(t) = sigma_min (sigma_max / sigma_min)^t,
    f = 0, g = sigma(t) sqrt(2 log(sigma_max / sigma_min))."""
    smin, smax = 0.01, 50.0
    c = sde_coefficients(make_schedule("geometric", steps=232, sigma_max=smax, sigma_min=smin), T)
    sigma = smin * (smax / smin) ** T
    assert torch.equal(c.f, torch.zeros_like(T))
    assert torch.allclose(c.g2.sqrt(), sigma * math.sqrt(2 * math.log(smax / smin)), rtol=1e-9)
    assert torch.allclose(c.sigma, sigma, rtol=1e-9) and torch.equal(c.alpha, torch.ones_like(T))


@pytest.mark.parametrize("family,params", [
    ("cosine", {"steps": 1000}),
    ("vdm_fixed", {}),
    ("vdm_learned", {}),
    ("custom", {"points": [[0.0, 9.0], [0.4, 1.0], [1.0, -8.0]]}),
    ("geometric", {"steps": 20, "sigma_max": 5.0, "sigma_min": 0.01}),
])
def test_f_and_g_are_the_marginals_derivatives(family, params):
    """Any schedule: f = d log alpha / dt and g^2 = d sigma^2 / dt - 2 f sigma^2, by
    central differences of the schedule's own alpha(t), sigma(t)."""
    schedule = make_schedule(family, **params)
    # off the knots (i / T) of a discrete schedule, whose log-SNR is linear between them
    t = torch.linspace(0.1, 0.9, 9, dtype=torch.float64) + 3e-4
    c = sde_coefficients(schedule, t)
    h = 1e-5 if not schedule.learned else 1e-3  # a learned schedule computes in float32
    with torch.no_grad():
        (a_hi, s_hi), (a_lo, s_lo) = schedule.alpha_sigma(t + h), schedule.alpha_sigma(t - h)
        a, s = schedule.alpha_sigma(t)
    f = (torch.log(a_hi.double()) - torch.log(a_lo.double())) / (2 * h)
    dsigma2 = (s_hi.double() ** 2 - s_lo.double() ** 2) / (2 * h)
    rtol = 1e-5 if not schedule.learned else 1e-2
    assert torch.allclose(c.f, f, rtol=rtol, atol=1e-7)
    assert torch.allclose(c.g2, dsigma2 - 2 * f * s.double() ** 2, rtol=rtol, atol=1e-7)
    assert bool((c.g2 > 0).all())


def test_discrete_schedule_slopes_at_the_knots():
    """A DDPM log-SNR is piecewise linear through its steps; at a knot the slope is the
    segment below (toward the data) or above it, never autograd's zero."""
    schedule = make_schedule("linear", steps=10, beta_start=1e-3, beta_end=0.2)
    lam = schedule.log_snr_steps
    t = torch.tensor([0.5, 1.0, 0.55], dtype=torch.float64)  # knots at (i + 1) / 10
    below = sde_coefficients(schedule, t, side=-1)
    above = sde_coefficients(schedule, t, side=+1)
    seg = (lam[1:] - lam[:-1]) * 10  # slope of segment i .. i + 1
    assert torch.allclose(-2 * below.k, torch.stack([seg[3], seg[8], seg[4]]))
    assert torch.allclose(-2 * above.k, torch.stack([seg[4], seg[8], seg[4]]))  # t = 1: the last segment


def test_drifts():
    """The reverse SDE and the probability-flow ODE (Song et al. eq. 6 and 13)."""
    c = sde_coefficients(ContinuousVP(), torch.tensor([0.3], dtype=torch.float64))
    x, score = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    f, g2 = float(c.f), float(c.g2)
    assert torch.allclose(reverse_sde_drift(x, score, c), f * x - g2 * score)
    assert torch.allclose(probability_flow_drift(x, score, c), f * x - 0.5 * g2 * score)

"""Schedules against the seed facts of docs/DESIGN.md and the papers' closed forms."""

import json
import math

import numpy as np
import pytest
import torch

import studio.core.schedules  # noqa: F401  (registers the schedules)
from studio.core.errors import ScheduleError
from studio.core.registry import SCHEDULES
from studio.core.schedules import cosine_alpha_bar, make_schedule, schedule_from_dict


def test_linear_seed_facts():
    """Ho et al.'s linear betas, T = 1000: q(x_T | x_0) = N(0.0063528 x_0, 0.9999596 I)."""
    s = make_schedule("linear", steps=1000)
    abar_T = float(s.alpha_bar[-1])
    assert math.sqrt(abar_T) == pytest.approx(0.0063528, abs=1e-6)
    assert 1.0 - abar_T == pytest.approx(0.9999596, abs=1e-6)
    # the slides' truncated print
    assert f"{math.sqrt(abar_T):.5f}" == "0.00635"


def test_posterior_variance_and_mean_match_the_closed_form():
    """beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t and mu~ coefficients (Ho eq. 7),
    recomputed here step by step in numpy from the betas alone."""
    s = make_schedule("linear", steps=50, beta_start=1e-3, beta_end=0.2)
    betas = np.linspace(1e-3, 0.2, 50)
    abar, prev = np.cumprod(1 - betas), 1.0
    for i, b in enumerate(betas):
        expected = (1 - prev) / (1 - abar[i]) * b
        assert float(s.posterior_variance[i]) == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert float(s.posterior_mean_coef1[i]) == pytest.approx(b * math.sqrt(prev) / (1 - abar[i]), rel=1e-12)
        assert float(s.posterior_mean_coef2[i]) == pytest.approx((1 - prev) * math.sqrt(1 - b) / (1 - abar[i]), rel=1e-12)
        prev = abar[i]
    assert float(s.posterior_variance[0]) == 0.0  # beta~_1 = 0: x_0 is known given x_1 and x_0


def test_cosine_alpha_bar_matches_nichol_dhariwal_eq17():
    T, s_ = 1000, 0.008
    sched = make_schedule("cosine", steps=T, s=s_)
    t = np.arange(1, T + 1) / T
    f = np.cos((t + s_) / (1 + s_) * np.pi / 2) ** 2
    expected = f / math.cos(s_ / (1 + s_) * math.pi / 2) ** 2
    # the last beta is clipped at 0.999 (eq. 17's footnote); every earlier step is exact
    np.testing.assert_allclose(sched.alpha_bar[:-1].numpy(), expected[:-1], rtol=1e-9)
    assert float(sched.betas.max()) <= 0.999
    torch.testing.assert_close(cosine_alpha_bar(torch.tensor([0.0], dtype=torch.float64)), torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize("family", SCHEDULES.names())
def test_log_snr_strictly_decreasing(family):
    sched = make_schedule(family)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    with torch.no_grad():
        lam = sched.log_snr(t).double()
    assert torch.isfinite(lam[:-1]).all()
    assert (lam[1:] < lam[:-1]).all(), f"{family}: log-SNR not strictly decreasing"
    alpha, sigma = sched.alpha_sigma(t)
    if sched.variance_preserving:
        torch.testing.assert_close((alpha.double() ** 2 + sigma.double() ** 2), torch.ones_like(lam), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "family, params, names",
    [
        ("linear", {"beta_end": 1.0}, "beta_end"),
        ("linear", {"beta_start": 0.0}, "beta_start"),
        ("quadratic", {"beta_end": 1.5}, "beta_end"),
        ("linear", {"steps": 0}, "steps"),
        ("cosine", {"steps": 2.5}, "steps"),
        ("linear", {"beta_start": float("nan")}, "beta_start"),
        ("vdm_fixed", {"gamma_max": float("nan")}, "gamma_max"),
        ("geometric", {"sigma_min": 50.0, "sigma_max": 50.0}, "sigma_min"),
        ("geometric", {"sigma_min": 60.0}, "sigma_min"),
        ("vdm_fixed", {"gamma_min": 5.0, "gamma_max": -13.3}, "gamma_min"),
        ("custom", {"points": [[0.0, 5.0], [0.5, 6.0], [1.0, -5.0]]}, "log_snr"),
        ("custom", {"points": [[0.0, 5.0], [0.5, 5.0], [1.0, -5.0]]}, "strictly decreasing"),
        ("linear", {"bogus": 1}, "bogus"),
    ],
)
def test_bad_parameters_name_the_parameter(family, params, names):
    with pytest.raises(ScheduleError, match=names):
        make_schedule(family, **params)


def test_unknown_family_lists_the_allowed_ones():
    with pytest.raises(Exception, match="linear"):
        make_schedule("nope")


@pytest.mark.parametrize("family", SCHEDULES.names())
def test_json_round_trip(family):
    sched = make_schedule(family)
    if sched.learned:  # move off the initial weights so the state must travel
        torch.manual_seed(0)
        with torch.no_grad():
            for p in sched.parameters():
                p.add_(0.1 * torch.randn_like(p))
    back = schedule_from_dict(json.loads(json.dumps(sched.to_dict())))
    assert type(back) is type(sched) and back.family == sched.family
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(back.log_snr(t).double(), sched.log_snr(t).double(), rtol=1e-6, atol=1e-6)


def test_zero_terminal_snr_rescale():
    s = make_schedule("linear", zero_terminal_snr=True)
    assert float(s.alpha_bar[-1]) == 0.0
    assert float(s.alpha_bar[0]) == pytest.approx(1 - 1e-4, rel=1e-9)  # abar_1 kept (Lin et al. Alg. 1)

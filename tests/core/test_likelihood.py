"""The ODE likelihood (core.likelihood) against a Gaussian mixture's exact log-density:
with the mixture's exact score (tests/core/gaussian_mixture.py) the instantaneous change
of variables must give the true density of the noised data at t = 0."""

from __future__ import annotations

import pytest
import torch

import studio.core.methods  # noqa: F401  (registers the methods)
from studio.core.errors import StudioError
from studio.core.likelihood import ode_log_likelihood, uniform_dequantize
from studio.core.registry import METHODS
from studio.core.schedules import make_schedule

from . import gaussian_mixture as gm


def alpha_sigma_at(method, t: float) -> tuple[float, float]:
    a, s = method.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    return float(a), float(s)


CASES = {
    "vdm": ("vdm_fixed", {}),
    "ddpm": ("linear", {"steps": 1000}),  # piecewise-linear log-SNR: no kinks in the log-SNR ODE
    "ncsn": ("geometric", {"steps": 20, "sigma_max": 100.0, "sigma_min": 0.01}),
}


@pytest.mark.parametrize("name", CASES)
def test_exact_score_gives_the_true_log_density(name):
    """With the true q(x_1) in place of the prior, the ODE must reproduce log q(x_0) to
    1e-3 nats; with the model's prior N(0, prior_std^2 I), log p(x) is off by no more
    than the prior's own mismatch at t = 1 (VDM ends at SNR e^-5, DDPM at ~4e-5)."""
    family, params = CASES[name]
    method = METHODS.get(name)(make_schedule(family, **params))
    vp = method.schedule.variance_preserving
    a0, s0 = alpha_sigma_at(method, 0.0)
    x = gm.draw(128, a0, s0, seed=3)
    res = ode_log_likelihood(method, gm.MixtureDenoiser(vp), x, divergence="exact", rtol=1e-8, atol=1e-8)
    true_prior = gm.log_density(res.z, *alpha_sigma_at(method, 1.0))
    expected = gm.log_density(x, a0, s0)
    assert float((true_prior + res.delta_log_p - expected).abs().max()) < 1e-3
    assert torch.allclose(res.log_p, res.prior_log_p + res.delta_log_p)
    mismatch = (res.prior_log_p - true_prior).abs()
    assert bool(((res.log_p - expected).abs() <= mismatch + 1e-3).all())
    assert res.nfe > 20


def test_the_hutchinson_estimate_is_unbiased_but_noisy():
    """One Rademacher probe per point: its mean over points matches the exact divergence's
    log-likelihood, single points do not."""
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    x = gm.draw(256, *alpha_sigma_at(method, 0.0), seed=5)
    net = gm.MixtureDenoiser(True)
    exact = ode_log_likelihood(method, net, x, divergence="exact")
    hutch = ode_log_likelihood(method, net, x, divergence="hutchinson", generator=torch.Generator().manual_seed(0))
    assert float((hutch.log_p - exact.log_p).abs().max()) > 1e-2
    assert float(hutch.log_p.mean()) == pytest.approx(float(exact.log_p.mean()), abs=0.1)


def test_bad_input_is_named():
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    x = torch.zeros(4, 2)
    with pytest.raises(StudioError, match="divergence"):
        ode_log_likelihood(method, gm.MixtureDenoiser(True), x, divergence="trace")
    with pytest.raises(StudioError, match="rtol"):
        ode_log_likelihood(method, gm.MixtureDenoiser(True), x, rtol=0.0)
    ztsnr = METHODS.get("ddpm")(make_schedule("linear", steps=50, zero_terminal_snr=True), prediction="v")
    with pytest.raises(StudioError, match="finite log-SNR"):
        ode_log_likelihood(ztsnr, gm.MixtureDenoiser(True, "v"), x)


def test_uniform_dequantization_stays_in_each_level_bin():
    levels = 256
    k = torch.randint(0, levels, (1000,), generator=torch.Generator().manual_seed(0)).double()
    y = uniform_dequantize(k / (levels - 1), levels, torch.Generator().manual_seed(1))
    assert torch.equal(torch.floor(y * levels), k) and float(y.min()) >= 0 and float(y.max()) < 1
    assert float((y * levels - k).mean()) == pytest.approx(0.5, abs=0.03)  # u ~ U[0, 1)

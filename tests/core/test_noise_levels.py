"""Noise-level densities against closed forms and against histograms of sampled t."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.core import noise_levels as nl
from studio.core.schedules import Schedule, make_schedule


class ContinuousCosine(Schedule):
    """abar = cos^2(pi t / 2): lambda = -2 log tan(pi t / 2) (s = 0, no clipping)."""

    family = "test_cosine"

    def log_snr(self, t):
        return -2.0 * torch.log(torch.tan(math.pi * torch.as_tensor(t) / 2))


def cosine_density(lam):
    return 1.0 / (2 * math.pi * np.cosh(lam / 2))  # sech(lambda / 2) / (2 pi)


def cosine_tail(lam):
    """P(lambda > l) = t(l) = (2 / pi) atan(e^{-l / 2})."""
    return 2 / math.pi * np.arctan(np.exp(-np.asarray(lam) / 2))


def sampled_histogram(schedule, edges, n=200_000, seed=0):
    t = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        lam = schedule.log_snr(t.to(torch.float32) if schedule.learned else t).double().numpy()
    counts, _ = np.histogram(lam, bins=edges)
    return counts, n


def test_cosine_density_is_sech_over_2pi():
    sched = ContinuousCosine(1000)
    lam = np.linspace(-12, 12, 97)
    np.testing.assert_allclose(nl.density_at(sched, lam), cosine_density(lam), rtol=1e-6)
    d = nl.log_snr_density(sched)
    assert d.kind == "continuous" and d.log_snr[0] == -nl.PLOT_LIMIT and d.log_snr[-1] == nl.PLOT_LIMIT
    np.testing.assert_allclose(d.density, cosine_density(d.log_snr), rtol=1e-6)


def test_cosine_density_matches_histogram_of_sampled_t():
    sched = ContinuousCosine(1000)
    edges = np.linspace(-10, 10, 41)
    counts, n = sampled_histogram(sched, edges)
    # the bin probabilities our density integrates to, against the draws (4 binomial sigmas)
    centres = 0.5 * (edges[1:] + edges[:-1])
    mass = nl.density_at(sched, centres) * np.diff(edges)
    exact = cosine_tail(edges[:-1]) - cosine_tail(edges[1:])
    np.testing.assert_allclose(mass, exact, rtol=4e-3)  # midpoint rule: h^2 f"/24f = 0.26% at h = 0.5
    sd = np.sqrt(n * exact * (1 - exact))
    assert np.all(np.abs(counts - n * exact) < 4 * sd + 1)
    shares = nl.band_shares(sched)
    np.testing.assert_allclose(shares["lambda > 5"], cosine_tail(5.0), atol=1e-12)
    np.testing.assert_allclose(shares["lambda < -5"], 1 - cosine_tail(-5.0), atol=1e-12)


def test_discrete_cosine_histogram_is_the_closed_form():
    """The T = 1000 DDPM cosine with s = 0 visits lambda_t at t = i / T: its histogram
    and band shares are the continuous ones to O(1 / T)."""
    sched = make_schedule("cosine", steps=1000, s=0.0)
    d = nl.log_snr_density(sched, bins=40)
    assert d.kind == "histogram" and len(d.levels) == 1000
    assert abs(float((d.density * np.diff(d.edges)).sum()) - np.mean(np.abs(d.levels) <= nl.PLOT_LIMIT)) < 1e-12
    mid = np.abs(d.log_snr) < 6
    exact = (cosine_tail(d.edges[:-1]) - cosine_tail(d.edges[1:])) / np.diff(d.edges)
    np.testing.assert_allclose(d.density[mid], exact[mid], rtol=0.05)
    shares = nl.band_shares(sched)
    assert abs(shares["lambda > 5"] - cosine_tail(5.0)) < 2e-3
    assert abs(shares["lambda < -5"] - (1 - cosine_tail(-5.0))) < 2e-3
    lev = sched.log_snr_steps.numpy()
    assert shares["lambda > 5"] == np.mean(lev > 5) and shares["lambda < -5"] == np.mean(lev < -5)


def test_vdm_linear_gamma_is_uniform():
    sched = make_schedule("vdm_fixed", gamma_min=-13.3, gamma_max=5.0)
    lam = np.linspace(-8, 16, 49)
    inside = (lam >= -5.0) & (lam <= 13.3)
    np.testing.assert_allclose(nl.density_at(sched, lam), np.where(inside, 1 / 18.3, 0.0), rtol=1e-9, atol=1e-12)
    edges = np.linspace(-5.0, 13.3, 19)
    counts, n = sampled_histogram(sched, edges, seed=1)
    p = 1 / 18
    assert np.all(np.abs(counts - n * p) < 4 * math.sqrt(n * p * (1 - p)))
    shares = nl.band_shares(sched)
    assert shares["lambda < -5"] == pytest.approx(0.0, abs=1e-12)
    assert shares["lambda > 5"] == pytest.approx(8.3 / 18.3, abs=1e-12)


def test_learned_and_geometric_schedules():
    learned = make_schedule("vdm_learned", gamma_min=-10.0, gamma_max=8.0)
    with torch.no_grad():
        learned.l3.weight.mul_(3000.0)  # bend it away from the straight line
    d = nl.log_snr_density(learned, n=397)
    assert abs(np.trapezoid(d.density, d.log_snr) - 1.0) < 1e-3
    counts, n = sampled_histogram(learned, np.linspace(d.log_snr[0], d.log_snr[-1], 13), n=50_000)
    mass = [np.trapezoid(d.density[k * 33:(k + 1) * 33 + 1], d.log_snr[k * 33:(k + 1) * 33 + 1]) for k in range(12)]
    np.testing.assert_allclose(counts / n, mass, atol=8e-3)
    geo = make_schedule("geometric", steps=50, sigma_max=5.0, sigma_min=0.01)
    d = nl.log_snr_density(geo)
    assert d.kind == "histogram" and len(d.levels) == 50
    np.testing.assert_allclose(d.levels[[0, -1]], [-2 * math.log(5.0), -2 * math.log(0.01)])


def test_zero_terminal_snr_mass_at_minus_infinity_counts_below():
    sched = make_schedule("linear", steps=100, zero_terminal_snr=True)
    shares = nl.band_shares(sched)
    assert shares["lambda < -5"] >= 0.01
    d = nl.log_snr_density(sched)
    assert np.all(np.isfinite(d.density)) and (d.density * np.diff(d.edges)).sum() == pytest.approx(0.99)


def test_grid_ticks_and_the_largest_jump():
    sched = make_schedule("vdm_fixed", gamma_min=-10.0, gamma_max=6.0)
    even = nl.grid_ticks(sched, 11, grid="uniform_log_snr")
    # uniform in lambda from lambda(1) = -6 to lambda at the smallest grid time 1 / T
    top = float(sched.log_snr(torch.tensor(1 / sched.steps, dtype=torch.float64)))
    np.testing.assert_allclose(even.log_snr, np.linspace(-6.0, top, 11), atol=1e-9)
    assert even.largest_jump == pytest.approx((top + 6.0) / 10, rel=1e-9)
    linear = make_schedule("linear", steps=1000)
    uni = nl.grid_ticks(linear, 50)
    jumps = np.abs(np.diff(uni.log_snr))
    assert uni.largest_jump == jumps.max() and uni.largest_jump_at == int(np.argmax(jumps))
    # uniform t on the linear betas: the biggest lambda step is the cleanest one
    assert uni.largest_jump_at == 48
    karras = nl.grid_ticks(linear, 50, grid="karras")
    assert karras.log_snr[0] == pytest.approx(uni.log_snr[0]) and karras.largest_jump < uni.largest_jump

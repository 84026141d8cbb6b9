"""Implied weightings: each identity to float precision, the real losses against them,
and VDM's invariance of the continuous ELBO to the schedule's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from studio.core import weighting as W
from studio.core.methods import DDPM, NCSN, VDM
from studio.core.parameterization import Prediction, from_x0_eps, q_sample, to_x0_eps
from studio.core.registry import METHODS
from studio.core.schedules import make_schedule


def random_case(vp: bool, seed: int = 0, b: int = 64, d: int = 5):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(b, d, generator=g, dtype=torch.float64)
    eps = torch.randn(b, d, generator=g, dtype=torch.float64)
    lam = torch.empty(b, dtype=torch.float64).uniform_(-8, 8, generator=g)
    if vp:
        alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    else:
        alpha, sigma = torch.ones_like(lam), torch.exp(-lam / 2)
    x_t = q_sample(x0, eps, alpha, sigma)
    eps_hat = torch.randn(b, d, generator=g, dtype=torch.float64)  # an arbitrary eps-net's output
    return x0, eps, lam, alpha, sigma, x_t, eps_hat


def sq(a):
    return ((a) ** 2).sum(1)


@pytest.mark.parametrize("vp", [True, False])
def test_weighting_identities_on_random_inputs(vp):
    x0, eps, lam, alpha, sigma, x_t, eps_hat = random_case(vp)
    pred = to_x0_eps("eps", eps_hat, x_t, alpha, sigma)
    sched = make_schedule("vdm_fixed") if vp else make_schedule("geometric")
    eps_err = sq(pred.eps - eps)
    for kind, name in (("eps", "eps_mse"), ("x0", "x0_mse"), ("v", "v_mse")):
        target = from_x0_eps(kind, Prediction(x0, eps), alpha, sigma)
        value = from_x0_eps(kind, pred, alpha, sigma)
        w = torch.as_tensor(W.BUILTIN[name].weight(lam.numpy(), sched))
        torch.testing.assert_close(sq(value - target), w * eps_err, rtol=1e-10, atol=0)
    # eps-MSE of the eps-net equals the SNR-weighted x0-MSE of the same net
    torch.testing.assert_close(eps_err, torch.exp(lam) * sq(pred.x0 - x0), rtol=1e-10, atol=0)
    # NCSN: sigma^2 * 1/2 ||s - grad log q||^2 with grad log q = -eps / sigma
    score_err = sq(pred.score(sigma) + eps / sigma[:, None])
    w = torch.as_tensor(W.BUILTIN["ncsn_dsm"].weight(lam.numpy(), sched))
    torch.testing.assert_close(sigma**2 * 0.5 * score_err, w * eps_err, rtol=1e-10, atol=0)
    # EDM: lambda(s) ||D - x||^2, lambda(s) = (s^2 + sd^2) / (s sd)^2, s = sigma / alpha
    edm = W._edm_weighting("edm", object())
    s = sigma / alpha
    lam_edm = (s**2 + 0.25) / (s * 0.5) ** 2
    torch.testing.assert_close(lam_edm * sq(pred.x0 - x0), torch.as_tensor(edm.weight(lam.numpy(), sched)) * eps_err, rtol=1e-10, atol=0)


class Linear(nn.Module):
    def __init__(self, d=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Linear(d + 1, d)

    def forward(self, x, log_snr):
        return self.a(torch.cat([x, log_snr[:, None].to(x.dtype) / 10], 1))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_ddpm_loss_is_its_weight_times_eps_mse(prediction):
    method = DDPM(make_schedule("linear", steps=200), prediction=prediction)
    net = Linear()
    x0 = torch.randn(256, 3)
    out = method.loss(net, x0, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws: step indices, then noise
    i = torch.randint(0, 200, (256,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    alpha, sigma = method.alpha_sigma_at(i, x0)
    _, pred = method.net_at(net, q_sample(x0, eps, alpha, sigma), i)
    w = W.weighting_for("ddpm", prediction).weight(out.log_snr.double().numpy(), method.schedule)
    expected = torch.as_tensor(w, dtype=torch.float32) * ((pred.eps - eps) ** 2).mean(1)
    torch.testing.assert_close(out.loss, expected, rtol=2e-4, atol=1e-6)


def test_vdm_and_ncsn_losses_are_their_weights_times_eps_error():
    sched = make_schedule("custom", points=[[0, 9], [0.3, 2], [0.8, -1], [1, -6]])
    vdm = VDM(sched)
    net = Linear()
    x = torch.randn(128, 3)
    t = torch.rand(128, generator=torch.Generator().manual_seed(1))
    loss = vdm.diffusion_loss(net, x, t, torch.Generator().manual_seed(2))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    pred = vdm.predict(net, q_sample(x, eps, *sched.alpha_sigma(t)), t)
    lam = sched.log_snr(t.double()).numpy()
    w = W.weighting_for("vdm").weight(lam, sched)
    torch.testing.assert_close(loss, torch.as_tensor(w, dtype=torch.float32) * sq(pred.eps - eps), rtol=1e-4, atol=1e-6)

    ncsn = NCSN(make_schedule("geometric", steps=20, sigma_max=5.0))
    out = ncsn.loss(net, x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    i = torch.randint(0, 20, (128,), generator=g)
    z = torch.randn(x.shape, generator=g)
    t = ncsn.level_times[i]
    pred = ncsn.predict(net, x + ncsn.schedule.sigma(t)[:, None] * z, t)
    w = W.weighting_for("ncsn").weight(out.log_snr.double().numpy(), ncsn.schedule)
    torch.testing.assert_close(out.loss, torch.as_tensor(w, dtype=torch.float32) * sq(pred.eps - z), rtol=1e-4, atol=1e-6)


class FixedDenoiser(nn.Module):
    """An x0-predictor x0_hat(z, lambda) = sigmoid(lambda) tanh(z), read as eps (VP: the
    method's input scale is 1)."""

    def forward(self, z, log_snr):
        lam = log_snr[:, None].to(z.dtype)
        alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
        x0_hat = torch.sigmoid(lam) * torch.tanh(z)
        return (z - alpha * x0_hat) / sigma


def continuous_elbo(schedule, x, intervals=32, order=6):
    """The VDM diffusion term E_t[...] by composite Gauss-Legendre in t, with the same
    noise at every node (common random numbers), plus the prior and reconstruction."""
    vdm = VDM(schedule)
    net = FixedDenoiser()
    nodes, weights = np.polynomial.legendre.leggauss(order)
    total = 0.0
    for k in range(intervals):
        a, b = k / intervals, (k + 1) / intervals
        for u, w in zip(nodes, weights):
            t = torch.full((len(x),), (a + b) / 2 + (b - a) / 2 * u, dtype=torch.float64)
            d = vdm.diffusion_loss(net, x, t, torch.Generator().manual_seed(0))
            total += (b - a) / 2 * w * float(d.mean())
    rest = float((vdm.prior_loss(x) + vdm.reconstruction_loss(x, None)).mean())
    return total, total + rest


def test_vdm_elbo_depends_only_on_the_end_points():
    """Kingma et al. 2021, section 5.1, with a fixed x0-predictor: the linear-gamma and a
    bent schedule through the same end points give the same continuous-time ELBO; moving
    an end point changes it."""
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        linear = make_schedule("vdm_fixed", gamma_min=-8.0, gamma_max=5.0)
        bent = make_schedule("custom", points=[[0, 8], [0.25, 1], [0.5, -0.5], [0.75, -2], [1, -5]])
        other = make_schedule("vdm_fixed", gamma_min=-7.0, gamma_max=5.0)
        d_lin, elbo_lin = continuous_elbo(linear, x)
        d_bent, elbo_bent = continuous_elbo(bent, x)
        d_other, _ = continuous_elbo(other, x)
    finally:
        torch.set_default_dtype(torch.float32)
    assert d_bent == pytest.approx(d_lin, rel=1e-6)
    assert elbo_bent == pytest.approx(elbo_lin, rel=1e-6)
    assert abs(d_other - d_lin) > 1e-2 * abs(d_lin)
    # and the effective weight of the ELBO is 1/2 on either schedule
    lam = np.linspace(-4.9, 7.9, 50)
    for sched in (linear, bent):
        np.testing.assert_allclose(W.effective_weight(sched, W.BUILTIN["vdm_elbo"], lam), 0.5, rtol=1e-6)


def test_effective_weight_is_density_times_weight_and_plugins_are_found():
    sched = make_schedule("vdm_fixed", gamma_min=-10.0, gamma_max=6.0)
    lam = np.linspace(-5.9, 9.9, 40)
    np.testing.assert_allclose(W.effective_weight(sched, W.BUILTIN["x0_mse"], lam), np.exp(-lam) / 16, rtol=1e-9)
    assert W.effective_weight(sched, W.BUILTIN["eps_mse"], np.array([-7.0, 11.0])).tolist() == [0.0, 0.0]

    class Own(VDM):
        """An objective weighting lambda by sigmoid(lambda), its levels N(0, 1)."""

        @staticmethod
        def loss_weight(log_snr):
            return torch.sigmoid(log_snr)

        @staticmethod
        def log_snr_density(log_snr):
            return torch.exp(-0.5 * log_snr**2) / math.sqrt(2 * math.pi)

    METHODS.register("own_weighting", Own)
    try:
        w = W.weighting_for("own_weighting")
        assert "own_weighting" in W.weightings()
        got = W.effective_weight(sched, w, np.array([0.0, 2.0]))
        want = 1 / (1 + np.exp(-np.array([0.0, 2.0]))) * np.exp(-0.5 * np.array([0.0, 4.0])) / math.sqrt(2 * math.pi)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    finally:
        METHODS.unregister("own_weighting")
    assert "own_weighting" not in W.weightings()
    with pytest.raises(Exception, match="no known weighting"):
        W.weighting_for("nope")


EDM_PLUGIN = __import__("pathlib").Path(__file__).parents[2] / "plugins" / "edm_method.py"


@pytest.mark.skipif(not EDM_PLUGIN.exists(), reason="the EDM plugin is not in plugins/")
def test_edm_plugin_weighting_is_found_and_matches_its_loss():
    from studio.plugins import load_plugins, unload_plugins

    load_plugins(EDM_PLUGIN.parent, entry_points=False)
    try:
        w = W.weighting_for("edm")
        assert w.name == "edm" and w.density is not None
        method = METHODS.get("edm")(make_schedule("geometric", steps=50, sigma_max=80.0, sigma_min=0.002))
        net = Linear()
        x0 = torch.randn(4096, 3)
        out = method.loss(net, x0, torch.Generator().manual_seed(4))
        g = torch.Generator().manual_seed(4)
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(4096, generator=g))
        n = torch.randn(x0.shape, generator=g)
        x_t = x0 + sigma[:, None] * n
        denoised = method.call_net(net, x_t, torch.ones_like(sigma), sigma, -2 * torch.log(sigma))
        eps_hat = (x_t - denoised) / sigma[:, None]
        want = torch.as_tensor(w.weight(out.log_snr.double().numpy(), method.schedule), dtype=torch.float32)
        torch.testing.assert_close(out.loss, want * ((eps_hat - n) ** 2).mean(1), rtol=1e-3, atol=1e-5)
        # its own noise levels: lambda = -2 ln sigma ~ N(2.4, 2.4^2), against the draws
        edges = np.linspace(-4, 9, 14)
        counts, _ = np.histogram(out.log_snr.numpy(), bins=edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        np.testing.assert_allclose(counts / 4096, w.density(centres) * 1.0, atol=0.012)
    finally:
        unload_plugins()


def test_vdm_on_a_ddpm_schedule_draws_continuous_time():
    """VDM draws t ~ U(0, 1) on a DDPM schedule's interpolated log-SNR: its effective
    weight is 1/2 there too, where eps-MSE (DDPM's own draws of the T steps) follows
    the histogram of the steps."""
    sched = make_schedule("cosine", steps=200)
    lam = np.linspace(-8, 8, 41)
    np.testing.assert_allclose(W.effective_weight(sched, W.BUILTIN["vdm_elbo"], lam), 0.5, rtol=1e-6)
    from studio.core.noise_levels import density_at

    np.testing.assert_allclose(W.effective_weight(sched, W.BUILTIN["eps_mse"], lam), density_at(sched, lam))

"""The three families against their papers: loss contracts, the optimal (Bayes) losses
for Gaussian data, the DDPM bound's terms against closed forms, exact vs estimated
L_vlb, and VDM's ELBO against its closed form for Gaussian data."""

import math

import pytest
import torch
from torch import nn

import studio.core.methods  # noqa: F401  (registers the methods)
import studio.core.networks  # noqa: F401
from studio.core.errors import ConfigError, ScheduleError, StudioError
from studio.core.methods.gaussians import discretized_gaussian_nll, normal_kl, normal_nll
from studio.core.registry import METHODS, NETWORKS
from studio.core.schedules import make_schedule

# a schedule each family accepts; a plugin method is tried against each in turn
SCHEDULES_FOR = {
    "ncsn": ("geometric", dict(steps=20, sigma_max=5.0, sigma_min=0.01)),
    "ddpm": ("linear", dict(steps=50, beta_start=1e-3, beta_end=0.2)),
    "vdm": ("vdm_fixed", {}),
}


def build(name, **options):
    candidates = [SCHEDULES_FOR[name]] if name in SCHEDULES_FOR else list(SCHEDULES_FOR.values())
    for family, params in candidates:
        try:
            return METHODS.get(name)(make_schedule(family, **params), **options)
        except StudioError:
            continue
    raise AssertionError(f"method {name!r} accepts none of the test schedules")


def small_net(shape=(2,)):
    torch.manual_seed(0)
    net = NETWORKS.get("mlp")(shape, hidden=32, depth=2, emb_dim=16)
    nn.init.normal_(net.out.weight, std=0.1)  # away from the zero init, so outputs vary
    return net


class GaussianOracle(nn.Module):
    """The Bayes-optimal eps predictor for x0 ~ N(0, I): with x_t = alpha x0 + sigma eps,
    E[eps | x_t] = sigma x_t / (alpha^2 + sigma^2). It undoes the method's input scaling
    c_in = 1 / sqrt(alpha^2 + sigma^2) from log-SNR alone (VP or VE)."""

    def __init__(self, variance_preserving: bool, kind: str = "eps"):
        super().__init__()
        self.vp, self.kind = variance_preserving, kind

    def forward(self, x_in, log_snr):
        lam = log_snr.double()
        if self.vp:
            alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
        else:
            alpha, sigma = torch.ones_like(lam), torch.exp(-0.5 * lam)
        r = alpha**2 + sigma**2
        x_t = x_in.double() * r.sqrt()[:, None]
        eps = sigma[:, None] * x_t / r[:, None]
        x0 = alpha[:, None] * x_t / r[:, None]
        out = {"eps": eps, "x0": x0, "v": alpha[:, None] * eps - sigma[:, None] * x0}[self.kind]
        return out.to(x_in.dtype)


# ----------------------------------------------------------------------------------
# the contract, over every registered method
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(name):
    method = build(name)
    net = small_net()
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    out = method.loss(net, x0, torch.Generator().manual_seed(1))
    assert out.loss.shape == out.log_snr.shape == out.t.shape == (16,)
    assert torch.isfinite(out.loss).all() and torch.isfinite(out.t).all()
    assert ((out.t >= 0) & (out.t <= 1)).all()
    for term in out.terms.values():
        assert term.shape == (16,) and torch.isfinite(term).all()
    out.loss.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    # the generator makes it reproducible
    again = method.loss(net, x0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(again.loss, out.loss)
    with torch.no_grad():
        pred = method.predict(net, x0, torch.full((16,), 0.5))
    assert pred.x0.shape == pred.eps.shape == x0.shape
    prior = method.prior_sample((8, 2), torch.Generator().manual_seed(2))
    assert prior.shape == (8, 2)
    assert method.name == name and method.prediction in ("eps", "x0", "v", "score")
    try:
        bound = method.nll_bound(net, x0[:4], torch.Generator().manual_seed(3))
    except StudioError:
        return  # a family without a likelihood bound says so
    assert bound["total"].shape == (4,) and torch.isfinite(bound["total"]).all()
    total = sum(v for k, v in bound.items() if k != "total")
    torch.testing.assert_close(total, bound["total"])


def test_method_predict_matches_the_sampler_readout():
    """method.predict calls net(c_in x_t, log_snr) exactly as samplers do."""
    for name in METHODS.names():
        method, net = build(name), small_net()
        x_t = torch.randn(5, 2)
        t = torch.tensor(0.3)
        alpha, sigma = (float(v) for v in method.schedule.alpha_sigma(t.double()))
        lam = float(method.schedule.log_snr(t.double()))
        with torch.no_grad():
            out = net(x_t / math.sqrt(alpha**2 + sigma**2), torch.full((5,), lam))
            pred = method.predict(net, x_t, torch.full((5,), 0.3))
        if method.prediction == "eps":
            torch.testing.assert_close(pred.eps, out, rtol=1e-4, atol=1e-5)


def test_schedules_families_refuse():
    with pytest.raises(ScheduleError, match="linear"):
        METHODS.get("ncsn")(make_schedule("linear"))
    with pytest.raises(ScheduleError, match="geometric"):
        METHODS.get("ddpm")(make_schedule("geometric"))
    with pytest.raises(ScheduleError, match="geometric"):
        METHODS.get("vdm")(make_schedule("geometric"))
    with pytest.raises(ConfigError, match="'v'"):
        METHODS.get("ddpm")(make_schedule("linear", zero_terminal_snr=True), prediction="eps")
    METHODS.get("ddpm")(make_schedule("linear", zero_terminal_snr=True), prediction="v")
    with pytest.raises(ScheduleError, match="zero terminal SNR"):
        METHODS.get("vdm")(make_schedule("cosine", zero_terminal_snr=True))
    with pytest.raises(ConfigError, match="prediction"):
        METHODS.get("ddpm")(make_schedule("linear"), prediction="score")
    with pytest.raises(ConfigError, match="variance"):
        METHODS.get("ddpm")(make_schedule("linear"), variance="large")
    with pytest.raises(StudioError, match="no likelihood bound"):
        build("ncsn").nll_bound(small_net(), torch.zeros(2, 2))


def test_ddpm_discretizes_continuous_schedules():
    m = METHODS.get("ddpm")(make_schedule("vdm_fixed"), steps=100)
    assert m.schedule.discrete and m.steps == 100
    assert m.loss(small_net(), torch.randn(4, 2)).loss.shape == (4,)


def test_learned_schedule_trains_with_the_method():
    m = METHODS.get("vdm")(make_schedule("vdm_learned"))
    assert any(p is q for p in m.parameters() for q in m.schedule.parameters())
    out = m.loss(small_net(), torch.randn(32, 2), torch.Generator().manual_seed(0))
    out.loss.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.schedule.parameters())
    assert float(m.schedule.l1.weight.grad.abs()) > 0


# ----------------------------------------------------------------------------------
# optimal losses for Gaussian data (the oracle knows E[eps | x_t] exactly)
# ----------------------------------------------------------------------------------


def test_ncsn_loss_is_sigma2_weighted_dsm():
    """For x0 ~ N(0, I), lambda(sigma) 1/2 E||s* + z / sigma||^2 with the true score
    s* = -x_t / (1 + sigma^2) equals D / 2 * 1 / (1 + sigma^2) at every level."""
    m = build("ncsn")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    out = m.loss(GaussianOracle(False), x0, g)
    sigma = torch.exp(-0.5 * out.log_snr)
    expected = 0.5 * 2 / (1 + sigma**2)
    # per-sample values scatter; the mean over 20000 draws is within a few standard errors
    se = (out.loss - expected).std() / math.sqrt(len(x0))
    assert abs(float((out.loss - expected).mean())) < 4 * se
    levels = m.schedule.sigmas.double()
    assert torch.isclose(sigma[:, None], levels[None], rtol=1e-5).any(1).all()  # only the L levels


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_ddpm_simple_loss_at_the_optimum(prediction):
    """For x0 ~ N(0, I), the Bayes errors per dimension are alpha^2 (eps), sigma^2 (x0)
    and 1 (v = alpha eps - sigma x0, whose conditional mean is 0)."""
    m = build("ddpm", prediction=prediction)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    out = m.loss(GaussianOracle(True, prediction), x0, g)
    abar = torch.sigmoid(out.log_snr)
    expected = {"eps": abar, "x0": 1 - abar, "v": torch.ones_like(abar)}[prediction]
    se = (out.loss - expected).std() / math.sqrt(len(x0))
    assert abs(float((out.loss - expected).mean())) < 4 * se + 1e-9


# ----------------------------------------------------------------------------------
# closed forms of the bound's pieces
# ----------------------------------------------------------------------------------


def test_normal_kl_and_nll_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(100, generator=g, dtype=torch.float64), torch.randn(100, generator=g, dtype=torch.float64)
    lv1, lv2 = torch.randn(100, generator=g, dtype=torch.float64), torch.randn(100, generator=g, dtype=torch.float64)
    N = torch.distributions.Normal
    ref = torch.distributions.kl_divergence(N(m1, (0.5 * lv1).exp()), N(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref)
    torch.testing.assert_close(normal_nll(m2, m1, lv1), -N(m1, (0.5 * lv1).exp()).log_prob(m2))


def test_discretized_gaussian_decoder():
    """Ho et al. eq. 13: bin masses of N(mean, s^2) on the 256-level grid, edges to
    +-inf; they sum to one over the grid and match cdf differences."""
    grid = torch.linspace(-1, 1, 256, dtype=torch.float64)
    N = torch.distributions.Normal
    for mean, log_s in [(0.3, math.log(0.05)), (-0.99, math.log(0.01)), (0.0, math.log(2.0)), (1.0, math.log(0.002))]:
        mean_t, log_s_t = torch.full_like(grid, mean), torch.full_like(grid, log_s)
        p = torch.exp(-discretized_gaussian_nll(grid, mean_t, log_s_t))
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
        d = N(torch.tensor(mean, dtype=torch.float64), torch.tensor(math.exp(log_s), dtype=torch.float64))
        k = 100
        ref = d.cdf(grid[k] + 1 / 255) - d.cdf(grid[k] - 1 / 255)
        assert float(p[k]) == pytest.approx(float(ref), rel=1e-6, abs=1e-12)
        assert float(p[0]) == pytest.approx(float(d.cdf(grid[0] + 1 / 255)), rel=1e-6, abs=1e-12)
    # far in a tail: finite, not -log(0)
    assert torch.isfinite(discretized_gaussian_nll(torch.tensor([0.0]), torch.tensor([0.9]), torch.tensor([math.log(1e-3)])))


def test_ddpm_prior_term_closed_form():
    m = build("ddpm")
    x0 = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    abar = float(m.schedule.alpha_bar[-1])
    expected = sum(0.5 * (abar * v * v + (1 - abar) - 1 - math.log(1 - abar)) for v in (0.5, -1.0))
    assert float(m.prior_kl(x0)) == pytest.approx(expected, rel=1e-9)


def test_ddpm_terms_closed_form_with_the_oracle():
    """With the Bayes-optimal x0_hat = alpha x_t for N(0, I) data, the reverse mean is
    mu~(x_t, alpha x_t); the KL at each step equals the Gaussian KL formula applied
    to mu~(x_t, x0) - mu~(x_t, x0_hat) = c1 (x0 - alpha x_t)."""
    m = build("ddpm", variance="beta")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(8, 2, generator=g, dtype=torch.float64)
    i = torch.full((8,), 10)
    term = m.term(GaussianOracle(True), x0, i, torch.Generator().manual_seed(5))
    eps = torch.randn(8, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    abar, beta = float(m.schedule.alpha_bar[10]), float(m.schedule.betas[10])
    post = float(m.schedule.posterior_variance[10])
    x_t = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps
    diff = float(m.schedule.posterior_mean_coef1[10]) * (x0 - math.sqrt(abar) * x_t)
    expected = (0.5 * (math.log(beta / post) + post / beta - 1 + diff**2 / beta)).sum(1)
    torch.testing.assert_close(term, expected)


def test_ddpm_vlb_exact_and_estimate_agree():
    """sum over all T terms vs (T - 1) E_t[L_{t-1}]: same mean within Monte Carlo error."""
    m = build("ddpm")  # T = 50
    net = small_net()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(400, 2, generator=g)
    exact = m.nll_bound(net, x0, torch.Generator().manual_seed(1), exact=True)
    est = m.nll_bound(net, x0, torch.Generator().manual_seed(2), exact=False, n_t=10)
    torch.testing.assert_close(exact["prior"], est["prior"])
    diff = est["total"] - exact["total"]
    se = diff.std() / math.sqrt(len(diff))
    assert abs(float(diff.mean())) < 4 * se, (float(diff.mean()), float(se))
    assert float(exact["diffusion"].mean()) > 0


def test_ddpm_vlb_bounds_the_true_nll_with_the_oracle():
    """For x0 ~ N(0, I) and the Bayes-optimal denoiser (exact sum over T = 1000 steps):
    the bound lies above the true NLL log(2 pi) + |x|^2 / 2. Reverse variance beta_t is
    the optimal one for N(0, I) data (Ho et al. section 3.2), so that bound is tight
    (measured gap 0.044 +- 0.033 nats); beta~_t is looser (measured 1.25 nats)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1000, 2, generator=g, dtype=torch.float64)
    true = math.log(2 * math.pi) + 0.5 * (x0**2).sum(1)
    gaps = {}
    for variance in ("beta", "posterior"):
        m = METHODS.get("ddpm")(make_schedule("linear"), variance=variance)
        gap = m.nll_bound(GaussianOracle(True), x0, torch.Generator().manual_seed(1), exact=True)["total"] - true
        se = float(gap.std()) / math.sqrt(len(gap))
        assert float(gap.mean()) > -3 * se, variance
        gaps[variance] = float(gap.mean())
    assert gaps["beta"] < 0.2
    assert gaps["posterior"] > gaps["beta"] + 0.5


# ----------------------------------------------------------------------------------
# VDM's ELBO
# ----------------------------------------------------------------------------------


def _perturbed(family):
    sched = make_schedule(family)
    if sched.learned:
        torch.manual_seed(3)
        with torch.no_grad():
            for p in sched.parameters():
                p.mul_(1 + 0.3 * torch.randn_like(p).abs())
    return sched


@pytest.mark.parametrize("family", ["vdm_fixed", "vdm_learned", "cosine"])
def test_vdm_elbo_closed_form_for_gaussian_data(family):
    """For x0 ~ N(0, I) and the optimal denoiser E||eps - eps*||^2 = D alpha_t^2, so the
    diffusion term is D/2 int gamma' sigmoid(-gamma) dt = D/2 [softplus(-gamma_0) -
    softplus(-gamma_1)], whatever the shape of gamma between its ends (VDM eq. 17 and
    its invariance, section 5.1). Checks gamma' by autograd on linear, learned and
    piecewise-linear (discrete cosine) schedules."""
    m = METHODS.get("vdm")(_perturbed(family))
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        g0, g1 = (float(v) for v in m.schedule.gamma(torch.tensor([0.0, 1.0])))
    sp = lambda v: math.log1p(math.exp(v))
    expected = 0.5 * 2 * (sp(-g0) - sp(-g1))
    d = m.nll_bound(GaussianOracle(True), x0, g, n_t=16)["diffusion"]
    se = d.std() / math.sqrt(len(d))
    assert float(d.mean()) == pytest.approx(expected, abs=4 * float(se) + 1e-3)


def test_vdm_elbo_does_not_depend_on_the_prediction():
    """The ELBO is a function of eps_hat alone: the optimal denoiser read as v (Salimans &
    Ho 2022) gives the same bound, term for term and sample for sample, as read as eps;
    x0 is refused (it would divide eps_hat by sigma_0 inside the bound)."""
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bounds = {}
    for kind in ("eps", "v"):
        m = METHODS.get("vdm")(make_schedule("vdm_fixed"), prediction=kind)
        bounds[kind] = m.nll_bound(GaussianOracle(True, kind), x0, torch.Generator().manual_seed(1), n_t=4)
    for term, value in bounds["eps"].items():
        assert torch.allclose(bounds["v"][term], value, rtol=1e-9, atol=1e-9), term
    with pytest.raises(ConfigError, match="prediction = 'x0'; allowed: eps, v"):
        METHODS.get("vdm")(make_schedule("vdm_fixed"), prediction="x0")


def test_vdm_prior_and_reconstruction_closed_forms():
    m = METHODS.get("vdm")(make_schedule("vdm_fixed"))  # gamma 0 -> -13.3, 1 -> 5
    x0 = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    var1 = 1 / (1 + math.exp(-5.0))
    expected_prior = sum(0.5 * ((1 - var1) * v * v + var1 - 1 - math.log(var1)) for v in (0.5, -1.0))
    assert float(m.prior_loss(x0)) == pytest.approx(expected_prior, rel=1e-6)
    # continuous decoder N(x; z0/alpha0, e^gamma0): expected NLL per dim 1/2 (log 2 pi - 13.3 + 1)
    assert float(m.reconstruction_loss(x0, None)) == pytest.approx(2 * 0.5 * (math.log(2 * math.pi) - 13.3 + 1), rel=1e-6)


def test_vdm_uint8_decoder_matches_its_expected_loss():
    """The 256-way decoder p(x | z_0) (VDM appendix C): with gamma_0 = -13.3 the bins are
    d = (2 / 255) / e^(gamma_0 / 2) = 6.06 noise stds apart, and the expected loss per
    (interior) value is E_e[log(1 + e^(-((d - e)^2 - e^2) / 2) + e^(-((d + e)^2 - e^2) / 2))]
    (the two neighbours; the rest are negligible) = 0.0070 nats."""
    m = METHODS.get("vdm")(make_schedule("vdm_fixed"), data="uint8")
    x = torch.randint(1, 255, (1000, 3, 4, 4), generator=torch.Generator().manual_seed(0)) / 127.5 - 1.0
    recon = m.reconstruction_loss(x.double(), torch.Generator().manual_seed(1))
    e = torch.randn(10**6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = (2 / 255) / math.exp(-13.3 / 2)
    expected = torch.log(1 + torch.exp(-0.5 * ((d - e) ** 2 - e**2)) + torch.exp(-0.5 * ((d + e) ** 2 - e**2))).mean()
    assert (recon >= 0).all()
    assert float(recon.mean()) / 48 == pytest.approx(float(expected), rel=0.15)
    loose = METHODS.get("vdm")(make_schedule("vdm_fixed", gamma_min=-4.0), data="uint8")
    assert float(loose.reconstruction_loss(x, torch.Generator().manual_seed(1)).mean()) / 48 > 1.0


def test_vdm_loss_is_bits_per_dim_of_the_bound():
    m = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    net = small_net((3,))
    x0 = torch.randn(64, 3)
    out = m.loss(net, x0, torch.Generator().manual_seed(0))
    assert set(out.terms) == {"diffusion", "prior", "reconstruction"}
    torch.testing.assert_close(out.loss, sum(out.terms.values()))
    # antithetic times: one uniform shift of an even grid
    gaps = torch.sort(out.t).values.diff()
    torch.testing.assert_close(gaps, torch.full_like(gaps, 1 / 64), atol=1e-5, rtol=0)
    nats = m.nll_bound(net, x0, torch.Generator().manual_seed(0), n_t=1)
    assert float(nats["prior"][0]) == pytest.approx(float(out.terms["prior"][0]) * 3 * math.log(2), rel=1e-5)

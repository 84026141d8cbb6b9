"""Samplers against their contract and the papers, with exact (untrained) denoisers.

For data N(mu, s^2 I) the optimal denoiser is known in closed form: with
x_t = alpha x0 + sigma eps and v = alpha^2 s^2 + sigma^2,
E[eps | x_t] = sigma (x_t - alpha mu) / v. Every sampler driven by it must return
samples with mean mu and standard deviation s, up to its discretisation error.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import studio.core.methods  # noqa: F401  (registers ncsn, ddpm, vdm)
from studio.core.errors import StudioError
from studio.core.parameterization import Prediction, from_x0_eps
from studio.core.registry import METHODS, SAMPLERS
from studio.core.samplers import StepRecord, sample
from studio.core.schedules import make_schedule

MU = torch.tensor([1.0, -0.5])
S = 0.5

SCHEDULES = {  # small, fast schedules of each family
    "ncsn": dict(family="geometric", steps=20, sigma_max=5.0, sigma_min=0.01),
    "ddpm": dict(family="linear", steps=1000),
    "vdm": dict(family="vdm_fixed", steps=1000),
}


def make_method(name: str, **options):
    params = dict(SCHEDULES.get(name, SCHEDULES["ddpm"]))
    return METHODS.get(name)(make_schedule(params.pop("family"), **params), **options)


class GaussianDenoiser(nn.Module):
    """The exact prediction for data N(mu, s^2 I), as a network: takes the method's
    scaled input x_t * c_in and log-SNR, returns the method's prediction kind."""

    def __init__(self, variance_preserving: bool, prediction: str = "eps", mu=MU, s=S):
        super().__init__()
        self.vp, self.prediction, self.s = variance_preserving, prediction, s
        self.register_buffer("mu", mu.double())

    def forward(self, x_in: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        lam = log_snr.double()[:, None]
        if self.vp:
            a2, s2 = torch.sigmoid(lam), torch.sigmoid(-lam)
        else:
            a2, s2 = torch.ones_like(lam), torch.exp(-lam)
        alpha, sigma = a2.sqrt(), s2.sqrt()
        x_t = x_in.double() * (a2 + s2).sqrt()  # undo c_in = 1 / sqrt(alpha^2 + sigma^2)
        v = a2 * self.s**2 + s2
        eps = sigma * (x_t - alpha * self.mu) / v
        x0 = self.mu + alpha * self.s**2 * (x_t - alpha * self.mu) / v
        return from_x0_eps(self.prediction, Prediction(x0, eps), alpha[:, 0], sigma[:, 0]).to(x_in.dtype)


class ToyNet(nn.Module):
    """A fixed, untrained network: deterministic, nonlinear in x and log-SNR."""

    def __init__(self, dim: int = 2):
        super().__init__()
        g = torch.Generator().manual_seed(123)
        self.w = nn.Parameter(torch.randn(dim, dim, generator=g) * 0.5)
        self.b = nn.Parameter(torch.randn(dim, generator=g) * 0.1)

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.w + self.b * log_snr.clamp(-30, 30)[:, None])


def marginal_at_1(method, n: int, seed: int = 0) -> torch.Tensor:
    """Exact draws from q(x_1) of the Gaussian data, so no prior mismatch enters."""
    t = torch.ones((), dtype=torch.float64)
    alpha, sigma = (float(v) for v in method.schedule.alpha_sigma(t))
    g = torch.Generator().manual_seed(seed)
    std = math.sqrt(alpha**2 * S**2 + sigma**2)
    return (alpha * MU + std * torch.randn(n, 2, generator=g)).float()


PAIRS = [(s, m) for s in SAMPLERS.names() for m in METHODS.names() if m in SAMPLERS.get(s).families]
STEPS = {"ancestral": 12, "ddim": 7, "langevin": 4, "euler": 6, "heun": 5, "dpmpp_2m": 6, "euler_maruyama": 8, "pc": 5, "dpmpp_2m_sde": 6, "dpmpp_3m_sde": 6, "rk45": 3}


# ----------------------------------------------------------------------------------
# the contract, over every registered sampler and method
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler_name,method_name", PAIRS)
def test_contract(sampler_name, method_name):
    sampler, method = SAMPLERS.get(sampler_name), make_method(method_name)
    net = ToyNet()
    shape, steps = (16, 2), STEPS[sampler_name]
    n = sampler.num_records(method, steps)

    grad_before, rng_before = torch.is_grad_enabled(), torch.get_rng_state()
    records = list(sampler(method, net, shape, steps, generator=torch.Generator().manual_seed(7)))
    assert len(records) == n
    frozen = [[r.x_t.clone(), r.x0_hat.clone(), r.eps_hat.clone(), r.x_next.clone()] for r in records]
    for k, r in enumerate(records):
        assert isinstance(r, StepRecord) and r.index == k
        for x in (r.x_t, r.x0_hat, r.eps_hat, r.x_next):
            assert x.shape == shape and torch.isfinite(x).all() and not x.requires_grad
        assert all(math.isfinite(v) for v in (r.t, r.log_snr, r.sigma))
        if k:
            assert r.t <= records[k - 1].t and r.log_snr >= records[k - 1].log_snr
            assert r.x_t is records[k - 1].x_next  # each step starts where the last ended
    # nothing yielded was modified in place afterwards
    for r, f in zip(records, frozen):
        for x, y in zip((r.x_t, r.x0_hat, r.eps_hat, r.x_next), f):
            assert torch.equal(x, y)

    # early close: no grad mode, RNG or other state left behind; a rerun is identical
    gen = sampler(method, net, shape, steps, generator=torch.Generator().manual_seed(7))
    first = [next(gen) for _ in range(min(3, n))]
    assert torch.is_grad_enabled() == grad_before  # also while suspended mid-run
    gen.close()
    assert torch.is_grad_enabled() == grad_before
    assert torch.equal(torch.get_rng_state(), rng_before)
    for a, b in zip(first, records):
        assert torch.equal(a.x_next, b.x_next) and a.t == b.t
    again = sample(sampler_name, method, net, shape, steps, generator=torch.Generator().manual_seed(7))
    assert torch.equal(again, records[-1].x_next)


@pytest.mark.parametrize("sampler_name,method_name", PAIRS)
def test_branch_from_a_scrubbed_step(sampler_name, method_name):
    """t_start = record.t, x_init = record.x_t, steps = n - k continues on the same grid."""
    sampler, method = SAMPLERS.get(sampler_name), make_method(method_name)
    steps, k = STEPS[sampler_name], 2
    opts = {"n_steps_each": 1} if sampler_name == "langevin" else {}
    full = list(sampler(method, ToyNet(), (8, 2), steps, generator=torch.Generator().manual_seed(3), **opts))
    rest = list(
        sampler(method, ToyNet(), (8, 2), steps - k, torch.Generator().manual_seed(4),
                x_init=full[k].x_t, t_start=full[k].t, **opts)
    )
    assert [r.t for r in rest] == pytest.approx([r.t for r in full[k:]], abs=1e-12)
    assert torch.allclose(rest[0].x0_hat, full[k].x0_hat, atol=1e-6)


def test_readout_matches_method_predict():
    """Samplers call the net themselves with precomputed floats; their x0_hat / eps_hat
    must equal method.predict's at the same (x_t, t) for every method and prediction."""
    cases = [(m, {}) for m in METHODS.names()] + [("ddpm", {"prediction": p}) for p in ("x0", "v")]
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    for name, options in cases:
        method = make_method(name, **options)
        for t in (1.0, 0.63, 0.05):
            (rec,) = SAMPLERS.get("ddim")(method, ToyNet(), (8, 2), 1, x_init=x, t_start=t)
            pred = method.predict(ToyNet(), x, torch.full((8,), rec.t))
            assert torch.allclose(rec.x0_hat, pred.x0, rtol=1e-4, atol=1e-4), (name, options, t)
            assert torch.allclose(rec.eps_hat, pred.eps, rtol=1e-4, atol=1e-4), (name, options, t)


# ----------------------------------------------------------------------------------
# the papers' formulas
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_ancestral_is_ho_algorithm_2(variance):
    """steps = T on a discrete schedule: Ho et al. 2020 Algorithm 2, transcribed."""
    schedule = make_schedule("linear", steps=8, beta_start=1e-3, beta_end=0.3)
    method, net = METHODS.get("ddpm")(schedule), ToyNet()
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    got = list(SAMPLERS.get("ancestral")(method, net, (32, 2), 8, torch.Generator().manual_seed(1), x_init=x_T, variance=variance))

    betas, alphas, abar = schedule.betas, schedule.alphas, schedule.alpha_bar
    g, x = torch.Generator().manual_seed(1), x_T.double()
    for i, t in enumerate(range(8, 0, -1)):  # paper's t = T .. 1
        b, a, ab = (float(v[t - 1]) for v in (betas, alphas, abar))
        sigma2 = b if variance == "beta" else (1 - float(schedule.alpha_bar_prev[t - 1])) / (1 - ab) * b
        z = torch.randn(32, 2, generator=g).double() if t > 1 else torch.zeros(32, 2, dtype=torch.float64)
        lam = torch.full((32,), math.log(ab / (1 - ab)))
        with torch.no_grad():
            eps = net(x.float(), lam).double()
        x = (x - b / math.sqrt(1 - ab) * eps) / math.sqrt(a) + math.sqrt(sigma2) * z  # line 4
        assert got[i].t == pytest.approx(t / 8)
        assert torch.allclose(got[i].x_next.double(), x, atol=1e-5), f"paper step t = {t}"

    # branching from paper step t = 5 continues with the schedule's own coefficients
    rest = list(SAMPLERS.get("ancestral")(method, net, (32, 2), 5, x_init=got[3].x_t, t_start=got[3].t, variance=variance))
    assert [r.t for r in rest] == [r.t for r in got[3:]]
    assert torch.allclose(rest[-1].x0_hat, rest[-1].x_next) and torch.equal(rest[0].x0_hat, got[3].x0_hat)


def test_zero_terminal_snr_needs_v_or_x0():
    """alpha_1 = 0: eps cannot give x0 there (Lin et al. 2024); v can."""
    schedule = make_schedule("linear", steps=50, zero_terminal_snr=True)
    v_method = METHODS.get("ddpm")(schedule, prediction="v")
    for name in ("ancestral", "ddim"):
        x = sample(name, v_method, GaussianDenoiser(True, "v"), (2000, 2), 50, torch.Generator().manual_seed(0))
        assert torch.isfinite(x).all()
        assert x.mean(0).tolist() == pytest.approx(MU.tolist(), abs=0.06)
    with pytest.raises(StudioError, match="zero.terminal.SNR"):  # the method or the sampler says so
        SAMPLERS.get("ddim")(METHODS.get("ddpm")(schedule), ToyNet(), (4, 2), 50)


def test_ddim_eta0_is_deterministic_and_eta1_is_ancestral():
    method, net = make_method("ddpm"), GaussianDenoiser(True)
    ddim = SAMPLERS.get("ddim")
    a = sample(ddim, method, net, (64, 2), 10, torch.Generator().manual_seed(0), eta=0.0)
    b = sample(ddim, method, net, (64, 2), 10, torch.Generator().manual_seed(0), eta=0.0)
    # eta = 0 draws no noise after the prior: the same x_init gives the same sample
    x_init = torch.randn(64, 2, generator=torch.Generator().manual_seed(5))
    c = sample(ddim, method, net, (64, 2), 10, torch.Generator().manual_seed(1), x_init=x_init)
    d = sample(ddim, method, net, (64, 2), 10, torch.Generator().manual_seed(2), x_init=x_init)
    assert torch.equal(a, b) and torch.equal(c, d)
    # eta = 1 is the ancestral sampler with the posterior variance (Song et al. eq. 16)
    e = sample(ddim, method, net, (64, 2), 10, torch.Generator().manual_seed(3), x_init=x_init, eta=1.0)
    f = sample("ancestral", method, net, (64, 2), 10, torch.Generator().manual_seed(3), x_init=x_init)
    assert torch.allclose(e, f, atol=1e-5)


def test_langevin_reaches_the_level_variance():
    """Many Langevin steps at one noise level sample that level's marginal
    N(mu, s^2 + sigma^2) of the Gaussian data (Song & Ermon 2019, sec. 2.2)."""
    method = make_method("ncsn")
    t = 0.6
    sigma = float(method.schedule.sigma(torch.tensor(t, dtype=torch.float64)))
    x = sample("langevin", method, GaussianDenoiser(False), (4000, 2), 1, torch.Generator().manual_seed(0),
               t_start=t, n_steps_each=400, step_lr=0.05 * sigma**2, denoise=False)
    assert x.mean(0).tolist() == pytest.approx(MU.tolist(), abs=0.05)
    assert x.var(0).mean().item() == pytest.approx(S**2 + sigma**2, rel=0.06)


# steps per sampler for the exact-denoiser quality check, and the tolerance on the std
QUALITY = {
    "ancestral": (250, {}),
    "ddim": (100, {}),
    "langevin": (100, {"n_steps_each": 5}),
    "euler": (250, {}),  # first order in t: on NCSN (k = log(sigma_max / sigma_min)) it needs many steps
    "heun": (25, {"grid": "karras"}),
    "dpmpp_2m": (25, {"grid": "karras"}),
    "euler_maruyama": (250, {}),
    "pc": (100, {}),
    "dpmpp_2m_sde": (50, {"grid": "uniform_log_snr"}),
    "dpmpp_3m_sde": (50, {"grid": "uniform_log_snr"}),
    "rk45": (2, {"grid": "karras"}),
}


@pytest.mark.parametrize("sampler_name,method_name", PAIRS)
def test_exact_denoiser_gives_the_data_distribution(sampler_name, method_name):
    method = make_method(method_name)
    net = GaussianDenoiser(method.schedule.variance_preserving, method.prediction)
    steps, opts = QUALITY[sampler_name]
    x = sample(sampler_name, method, net, (3000, 2), steps, torch.Generator().manual_seed(0),
               x_init=marginal_at_1(method, 3000), **opts)
    assert x.mean(0).tolist() == pytest.approx(MU.tolist(), abs=0.05)
    assert x.std(0).tolist() == pytest.approx([S, S], rel=0.08)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_ddpm_predictions_sample_alike(prediction):
    """The same exact denoiser read as eps, x0 or v gives the same samples."""
    x_init = marginal_at_1(make_method("ddpm"), 256)
    out = {}
    for kind in ("eps", prediction):
        method = make_method("ddpm", prediction=kind)
        out[kind] = sample("ddim", method, GaussianDenoiser(True, kind), (256, 2), 20, x_init=x_init)
    assert torch.allclose(out["eps"], out[prediction], atol=1e-4)


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler_name", SAMPLERS.names())
def test_bad_input_is_named(sampler_name):
    sampler, method, net = SAMPLERS.get(sampler_name), make_method("ddpm"), ToyNet()
    with pytest.raises(StudioError, match="colour"):
        sampler(method, net, (4, 2), 5, colour="red")
    with pytest.raises(StudioError, match="colour"):
        sampler.num_records(method, 5, colour="red")
    for steps in (0, -3, 2.5, True):
        with pytest.raises(StudioError, match="steps"):
            sampler(method, net, (4, 2), steps)
    with pytest.raises(StudioError, match="t_start"):
        sampler(method, net, (4, 2), 5, t_start=1.5)
    with pytest.raises(StudioError, match="x_init"):
        sampler(method, net, (4, 2), 5, x_init=torch.zeros(3, 2))

    class Other(nn.Module):
        name, prediction, schedule = "edm", "eps", method.schedule

    with pytest.raises(StudioError, match="edm"):
        sampler(Other(), net, (4, 2), 5)


def test_bad_option_values_are_named():
    method, net = make_method("ddpm"), ToyNet()
    with pytest.raises(StudioError, match="variance"):
        SAMPLERS.get("ancestral")(method, net, (4, 2), 5, variance="large")
    with pytest.raises(StudioError, match="eta"):
        SAMPLERS.get("ddim")(method, net, (4, 2), 5, eta=-1.0)
    for key, value in (("step_lr", 0.0), ("n_steps_each", 0), ("denoise", "yes")):
        with pytest.raises(StudioError, match=key):
            SAMPLERS.get("langevin")(method, net, (4, 2), 5, **{key: value})


def test_num_records_of_langevin():
    method, lang = make_method("ncsn"), SAMPLERS.get("langevin")
    assert lang.num_records(method, 7, n_steps_each=3) == 22  # L x T + the denoising step
    assert lang.num_records(method, 7, n_steps_each=3, denoise=False) == 21


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("sampler_name,method_name", PAIRS)
def test_cuda(sampler_name, method_name):
    """A method and net moved to the GPU sample there, with a GPU generator."""
    method = make_method(method_name).cuda()
    net = GaussianDenoiser(method.schedule.variance_preserving).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    records = list(SAMPLERS.get(sampler_name)(method, net, (256, 2), 5, g, x_init=torch.zeros(256, 2, device="cuda")))
    assert all(r.x_next.is_cuda and r.x0_hat.is_cuda for r in records)
    assert torch.isfinite(records[-1].x_next).all()


# ----------------------------------------------------------------------------------
# clip_x0: eps models at the end of the cosine schedule
# ----------------------------------------------------------------------------------


class OffByEps(GaussianDenoiser):
    """The exact denoiser with a small constant eps error, as a trained net has
    (~0.04-0.05 rms at the last cosine levels for an MLP trained on moons)."""

    def forward(self, x_in: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        return super().forward(x_in, log_snr) + 0.03


def test_clip_x0_tames_eps_error_at_the_end_of_the_cosine_schedule():
    """Cosine (beta_T clipped to 0.999): alpha_T ~ 5e-5, so x0_hat = (x - sigma eps_hat) / alpha
    turns an eps error of 0.03 into an x0 error of ~600, which DDIM's first step carries
    to alpha_s x0_hat with alpha_s ~ 0.03 (samples ~9 off). Clamping x0_hat to a bound of
    the data range (diffusers' clip_sample) keeps the step sane. (A trained net, which
    extrapolates worse than this exact one, breaks the ancestral sampler too:
    tests/core/test_training_quality.py.)"""
    method = METHODS.get("ddpm")(make_schedule("cosine", steps=1000))
    run = lambda **opts: sample("ddim", method, OffByEps(True), (2000, 2), 50, torch.Generator().manual_seed(0), **opts)
    for off in (run(), run(clip_x0=0.0)):  # the failure clipping fixes; 0 is off
        assert float((off.mean(0) - MU).abs().max()) > 5
    x = run(clip_x0=3.0)
    assert x.mean(0).tolist() == pytest.approx(MU.tolist(), abs=0.2)
    assert x.std(0).tolist() == pytest.approx([S, S], rel=0.1)


def test_clip_x0_bounds_every_x0_hat_and_is_checked():
    method = METHODS.get("ddpm")(make_schedule("cosine", steps=100))
    records = list(SAMPLERS.get("ddim")(method, OffByEps(True), (64, 2), 10, clip_x0=1.5))
    assert max(float(r.x0_hat.abs().max()) for r in records) <= 1.5
    assert float(records[-1].x_next.abs().max()) <= 1.5  # the last step lands on x0_hat
    for bad in (-1.0, "big", True, math.inf):
        with pytest.raises(StudioError, match="clip_x0"):
            SAMPLERS.get("ancestral")(method, ToyNet(), (4, 2), 5, clip_x0=bad)

"""The SDE-view samplers with an exact denoiser (a Gaussian mixture's, gaussian_mixture.py):
the ODE solvers converge to a tight RK45 reference at their order, RK45 reports its
evaluations, and each sampler's records read the network as method.predict does."""

from __future__ import annotations

import math

import pytest
import torch

import studio.core.methods  # noqa: F401  (registers the methods)
from studio.core.errors import StudioError
from studio.core.registry import METHODS, SAMPLERS
from studio.core.samplers import sample
from studio.core.schedules import make_schedule

from . import gaussian_mixture as gm
from .test_samplers import ToyNet

CASES = {  # continuous log-SNR: the order is not blurred by a discrete schedule's kinks
    "vdm": ("vdm_fixed", {}),
    "ncsn": ("geometric", {"steps": 20, "sigma_max": 5.0, "sigma_min": 0.01}),
}
# (sampler, options): order; dpmpp_3m_sde at eta 0 is the third-order ODE solver
ORDERS = {("euler", ()): 1.0, ("heun", ()): 2.0, ("dpmpp_2m", ()): 2.0, ("dpmpp_3m_sde", (("eta", 0.0),)): 3.0}


def case(name):
    family, params = CASES[name]
    method = METHODS.get(name)(make_schedule(family, **params))
    a, s = method.schedule.alpha_sigma(torch.tensor(1.0, dtype=torch.float64))
    return method, gm.MixtureDenoiser(method.schedule.variance_preserving), gm.draw(256, float(a), float(s), seed=1)


@pytest.mark.parametrize("method_name,grid", [("vdm", "uniform_log_snr"), ("ncsn", "karras")])
def test_ode_solvers_converge_at_their_order(method_name, grid):
    """Halving the step: Euler's error falls ~2x, Heun's and DPM-Solver++(2M)'s ~4x,
    DPM-Solver++(3M)'s (eta 0) ~8x. The error is the rms distance of the state at the
    grid's last time (before the step onto the data) from dopri5's at rtol = atol = 1e-10,
    in float64. Every solver starts from the reference at the grid's third time, given the
    reference's x0_hat at the first two as its history: a multistep method's order is
    measured with exact starting values (started from the prior, 3M's lower-order first
    steps cap it at 2: measured 2.3)."""
    method, net, x1 = case(method_name)
    errors = {key: [] for key in ORDERS}
    for steps in (32, 64, 128):
        ref = list(SAMPLERS.get("rk45")(method, net, x1.shape, steps, x_init=x1, rtol=1e-10, atol=1e-10, grid=grid))
        start = {"x_init": ref[2].x_t, "t_start": ref[2].t, "x0_prev": [ref[1].x0_hat, ref[0].x0_hat],
                 "t_prev": [ref[1].t, ref[0].t]}
        for (name, opts), errs in errors.items():
            records = list(SAMPLERS.get(name)(method, net, x1.shape, steps - 2, grid=grid, **start, **dict(opts)))
            assert records[-1].t == ref[-1].t  # the same end of the grid
            errs.append(float((records[-1].x_t - ref[-1].x_t).pow(2).mean().sqrt()))
    for (name, _), order in ORDERS.items():
        measured = math.log2(errors[name, _][0] / errors[name, _][2]) / 2  # two halvings
        assert measured == pytest.approx(order, abs=0.3), (name, errors[name, _])


def test_rk45_default_grid_of_two_points_is_the_whole_interval():
    """A comparison cell runs rk45 on 2 grid points with no options (the Samplers panel):
    by default its grid spans the prior to the schedule's last grid time, so its one
    interval is the whole reverse process (uniform_t's would end at t = 1/2)."""
    method, net, x1 = case("vdm")
    records = list(SAMPLERS.get("rk45")(method, net, x1.shape, 2, x_init=x1, rtol=1e-4, atol=1e-4))
    assert records[0].t == 1.0 and records[-1].t == pytest.approx(float(method.schedule.sampling_times()[-1]))
    assert float(gm.log_density(records[-1].x_next.double()).mean()) > float(gm.log_density(x1).mean()) + 1.0


def test_rk45_meets_its_tolerance_and_counts_evaluations():
    method, net, x1 = case("vdm")
    ref = list(SAMPLERS.get("rk45")(method, net, x1.shape, 2, x_init=x1, rtol=1e-10, atol=1e-10))
    loose = list(SAMPLERS.get("rk45")(method, net, x1.shape, 2, x_init=x1, rtol=1e-4, atol=1e-4))
    tight = list(SAMPLERS.get("rk45")(method, net, x1.shape, 2, x_init=x1, rtol=1e-6, atol=1e-6))
    err = lambda r: float((r[-1].x_t - ref[-1].x_t).abs().max())
    assert err(tight) < err(loose) < 1e-2 and err(tight) < 1e-4
    # dopri5: 6 evaluations a step plus the start; the data step adds one
    assert 7 < loose[0].nfe < tight[0].nfe < ref[0].nfe and tight[-1].nfe == tight[0].nfe + 1
    with pytest.raises(StudioError, match="adaptive"):
        SAMPLERS.get("rk45").nfe(method, 10)
    with pytest.raises(StudioError, match="rtol"):
        SAMPLERS.get("rk45")(method, net, x1.shape, 2, rtol=0.0)


@pytest.mark.parametrize("sampler_name", ["euler", "heun", "dpmpp_2m", "euler_maruyama", "pc", "dpmpp_2m_sde", "dpmpp_3m_sde", "rk45"])
@pytest.mark.parametrize("method_name", ["ncsn", "ddpm", "vdm"])
def test_records_read_the_net_as_method_predict(sampler_name, method_name):
    """Every record's x0_hat / eps_hat are method.predict's at (record.x_t, record.t),
    however many calls its step makes."""
    from .test_samplers import make_method

    method = make_method(method_name)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    records = list(SAMPLERS.get(sampler_name)(method, ToyNet(), (8, 2), 4, torch.Generator().manual_seed(1), x_init=x))
    for r in records:
        pred = method.predict(ToyNet(), r.x_t, torch.full((8,), r.t))
        assert torch.allclose(r.x0_hat, pred.x0, rtol=1e-4, atol=1e-4)
        assert torch.allclose(r.eps_hat, pred.eps, rtol=1e-4, atol=1e-4)


def test_evaluation_counts_per_step():
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    for name, opts, per_step in (("heun", {}, [2, 2, 2, 1]), ("pc", {"n_corrector": 2}, [3, 3, 3, 3]),
                                 ("pc", {"n_corrector": 0}, [1, 1, 1, 1]), ("dpmpp_2m", {}, [1, 1, 1, 1])):
        records = list(SAMPLERS.get(name)(method, ToyNet(), (4, 2), 4, **opts))
        nfe = [r.nfe for r in records]
        assert [b - a for a, b in zip([0, *nfe], nfe)] == per_step, name
        assert nfe[-1] == SAMPLERS.get(name).nfe(method, 4, **opts)


def test_dpmpp_2m_first_step_is_ddim_and_the_second_uses_the_history():
    """Lu et al. 2022 Alg. 2: the first step is first order (DDIM); from the second on
    x_s = sigma_s / sigma_t x + alpha_s (1 - e^-h) ((1 + 1/2r) x0_hat - x0_hat_prev / 2r)."""
    method, net, x1 = case("vdm")
    dpm = list(SAMPLERS.get("dpmpp_2m")(method, net, x1.shape, 6, x_init=x1))
    ddim = list(SAMPLERS.get("ddim")(method, net, x1.shape, 6, x_init=x1))
    assert torch.allclose(dpm[0].x_next, ddim[0].x_next, atol=1e-10)
    t, s, prev = dpm[1], dpm[2], dpm[0]
    h, h_prev = 0.5 * (s.log_snr - t.log_snr), 0.5 * (t.log_snr - prev.log_snr)
    a_s, s_s = math.sqrt(1 / (1 + math.exp(-s.log_snr))), s.sigma
    r = h_prev / h
    D = (1 + 1 / (2 * r)) * t.x0_hat - prev.x0_hat / (2 * r)
    expected = s_s / t.sigma * t.x_t + a_s * (-math.expm1(-h)) * D
    assert torch.allclose(t.x_next, expected, atol=1e-10)


@pytest.mark.parametrize("sampler_name", ["euler_maruyama", "pc", "dpmpp_2m_sde", "dpmpp_3m_sde"])
def test_sde_samplers_sample_the_mixture(sampler_name):
    """With the exact score the reverse SDE samplers draw the mixture: its mean, std and
    log-likelihood of the samples under the true density."""
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    a, s = method.schedule.alpha_sigma(torch.tensor(1.0, dtype=torch.float64))
    x1 = gm.draw(4000, float(a), float(s), seed=2).float()
    x = sample(sampler_name, method, gm.MixtureDenoiser(True), x1.shape, 200, torch.Generator().manual_seed(0), x_init=x1)
    ref = gm.draw(4000, seed=3)
    assert x.mean(0).tolist() == pytest.approx(ref.mean(0).tolist(), abs=0.06)
    assert x.std(0).tolist() == pytest.approx(ref.std(0).tolist(), rel=0.06)
    assert float(gm.log_density(x).mean()) == pytest.approx(float(gm.log_density(ref).mean()), abs=0.08)


def test_dpmpp_2m_sde_steps():
    """The SDE variant (Lu et al. 2022): its first step is the DDPM posterior q(x_s | x_t,
    x0 = x0_hat), i.e. ancestral sampling on the grid; from the second on x_s = sigma_s /
    sigma_t e^-h x + alpha_s (1 - e^-2h) D + sigma_s sqrt(1 - e^-2h) z with the same D as
    dpmpp_2m. The noise z is the generator's next normal draw, one per step."""
    method, net, x1 = case("vdm")
    steps = list(SAMPLERS.get("dpmpp_2m_sde")(method, net, x1.shape, 6, torch.Generator().manual_seed(5), x_init=x1))
    z = torch.Generator().manual_seed(5)
    draws = [torch.randn(x1.shape, generator=z, dtype=x1.dtype) for _ in range(2)]
    alpha = lambda r: math.sqrt(1 / (1 + math.exp(-r.log_snr)))
    t, s = steps[0], steps[1]
    snr_ratio = math.exp(t.log_snr - s.log_snr)  # SNR_t / SNR_s = e^{-2h}
    mean = alpha(t) / alpha(s) * s.sigma**2 / t.sigma**2 * t.x_t + alpha(s) * (1 - snr_ratio) * t.x0_hat
    assert torch.allclose(t.x_next, mean + s.sigma * math.sqrt(1 - snr_ratio) * draws[0], atol=1e-10)
    prev, t, s = steps[0], steps[1], steps[2]
    h, h_prev = 0.5 * (s.log_snr - t.log_snr), 0.5 * (t.log_snr - prev.log_snr)
    r = h_prev / h
    D = (1 + 1 / (2 * r)) * t.x0_hat - prev.x0_hat / (2 * r)
    phi = -math.expm1(-2 * h)
    expected = s.sigma / t.sigma * math.exp(-h) * t.x_t + alpha(s) * phi * D + s.sigma * math.sqrt(phi) * draws[1]
    assert torch.allclose(t.x_next, expected, atol=1e-10)


def test_dpmpp_3m_sde_steps():
    """DPM-Solver++(3M) SDE: with k = 2h, x_s = sigma_s / sigma_t e^-h x + alpha_s [(1 -
    e^-k) D0 + phi_2 d1 - 2 phi_3 d2] + sigma_s sqrt(1 - e^-2h) z (d2 = h^2 x0_hat'' / 2:
    the weight of x0_hat'' h^2 is -phi_3, so d2's is -2 phi_3); its second step has the
    second-order correction phi_2 (D0 - D1) / r, its first is the DDPM posterior
    (dpmpp_2m_sde's first step). The noise z is the generator's next draw."""
    method, net, x1 = case("vdm")
    steps = list(SAMPLERS.get("dpmpp_3m_sde")(method, net, x1.shape, 6, torch.Generator().manual_seed(5), x_init=x1))
    first = list(SAMPLERS.get("dpmpp_2m_sde")(method, net, x1.shape, 6, torch.Generator().manual_seed(5), x_init=x1))[0]
    assert torch.equal(steps[0].x_next, first.x_next)
    z = torch.Generator().manual_seed(5)
    draws = [torch.randn(x1.shape, generator=z, dtype=x1.dtype) for _ in range(3)]
    alpha = lambda r: math.sqrt(1 / (1 + math.exp(-r.log_snr)))
    half_step = lambda a, b: 0.5 * (b.log_snr - a.log_snr)
    for i in (1, 2):
        t, s = steps[i], steps[i + 1]
        h = half_step(t, s)
        k = 2 * h
        phi_2 = math.expm1(-k) / k + 1
        phi_3 = phi_2 / k - 0.5
        r0 = half_step(steps[i - 1], t) / h
        d10 = (t.x0_hat - steps[i - 1].x0_hat) / r0
        if i == 1:
            correction = phi_2 * d10
        else:
            r1 = half_step(steps[i - 2], steps[i - 1]) / h
            d11 = (steps[i - 1].x0_hat - steps[i - 2].x0_hat) / r1
            d1, d2 = d10 + (d10 - d11) * r0 / (r0 + r1), (d10 - d11) / (r0 + r1)
            correction = phi_2 * d1 - 2 * phi_3 * d2
        expected = (s.sigma / t.sigma * math.exp(-h) * t.x_t + alpha(s) * (-math.expm1(-k) * t.x0_hat + correction)
                    + s.sigma * math.sqrt(-math.expm1(-2 * h)) * draws[i])
        assert torch.allclose(t.x_next, expected, atol=1e-10), i


def test_dpmpp_2m_sde_converges_at_second_order():
    """With the exact score, the bias of the mean log-density of the samples under the true
    density (against exact draws') falls ~4x when the steps double from 20 to 40 (second
    order; Euler-Maruyama's ~2x, first order), and stays below Euler-Maruyama's and
    ancestral sampling's (the solver's first-order form) at both; the 3M SDE's, with the
    third-order drift, below the 2M's. Measured (20000 points): 2M SDE 0.057 -> 0.014,
    3M SDE 0.026 -> 0.0068, Euler-Maruyama 0.141 -> 0.067, ancestral 0.115 -> 0.092."""
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    a, s = method.schedule.alpha_sigma(torch.tensor(1.0, dtype=torch.float64))
    x1 = gm.draw(20000, float(a), float(s), seed=2)
    true = float(gm.log_density(gm.draw(20000, seed=3)).mean())
    bias = {}
    for name in ("dpmpp_2m_sde", "dpmpp_3m_sde", "euler_maruyama", "ancestral"):
        for steps in (20, 40):
            x = sample(name, method, gm.MixtureDenoiser(True), x1.shape, steps, torch.Generator().manual_seed(0), x_init=x1)
            bias[name, steps] = abs(float(gm.log_density(x).mean()) - true)
    assert bias["dpmpp_2m_sde", 40] < 0.4 * bias["dpmpp_2m_sde", 20], bias
    assert bias["euler_maruyama", 40] > 0.4 * bias["euler_maruyama", 20], bias  # the test tells the orders apart
    for steps in (20, 40):
        assert bias["dpmpp_2m_sde", steps] < 0.6 * min(bias["euler_maruyama", steps], bias["ancestral", steps]), bias
        assert bias["dpmpp_3m_sde", steps] < 0.7 * bias["dpmpp_2m_sde", steps], bias


def test_dpmpp_2m_sde_eta_spans_ode_and_sde():
    """eta = 0 is dpmpp_2m's ODE step for step; eta in (0, 1) adds noise of variance
    sigma_s^2 (1 - e^{-2 eta h}); a value outside [0, 1] is refused by name."""
    method, net, x1 = case("vdm")
    sde, ode = SAMPLERS.get("dpmpp_2m_sde"), SAMPLERS.get("dpmpp_2m")
    a = list(sde(method, net, x1.shape, 6, torch.Generator().manual_seed(0), x_init=x1, eta=0.0))
    b = list(ode(method, net, x1.shape, 6, x_init=x1))
    for r, q in zip(a, b):
        assert torch.equal(r.x_next, q.x_next)
    half = sde.plan(method, 6, 1.0, sde.options({"eta": 0.5}))
    full = sde.plan(method, 6, 1.0, sde.options({}))
    assert all(0.0 < p.c < f.c for p, f in zip(half[:-1], full[:-1]))
    for bad in (-0.1, 1.5, True):
        for name in ("dpmpp_2m_sde", "dpmpp_3m_sde"):
            with pytest.raises(StudioError, match=f"'{name}': eta"):
                SAMPLERS.get(name).options({"eta": bad})

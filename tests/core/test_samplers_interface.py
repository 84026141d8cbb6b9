"""The sampler interface the app's forms and the viewer build on: declared options,
time grids, branching on every grid kind, and evaluation counts."""

from __future__ import annotations

import math
import types
import typing

import pytest
import torch

import studio.core.methods  # noqa: F401  (registers ncsn, ddpm, vdm)
from studio.core.errors import StudioError
from studio.core.registry import METHODS, SAMPLERS
from studio.core.samplers import OptionSpec
from studio.core.samplers.grids import GRIDS, time_grid
from studio.core.schedules import make_schedule

from .test_samplers import PAIRS, GaussianDenoiser, ToyNet, make_method

SCHEDULES = {
    "linear": dict(family="linear", steps=1000),
    "geometric": dict(family="geometric", steps=20, sigma_max=5.0, sigma_min=0.01),
    "vdm_fixed": dict(family="vdm_fixed"),
    "vdm_learned": dict(family="vdm_learned"),
    "custom": dict(family="custom", points=[[0.0, 9.0], [0.4, 1.0], [1.0, -8.0]]),
}


def fits(value, annotation) -> bool:
    """Does a default match its declared annotation?"""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, annotation)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_option_specs_declare_every_option(name):
    sampler = SAMPLERS.get(name)
    specs = sampler.option_specs()
    assert list(specs) == list(sampler.defaults)
    for key, spec in specs.items():
        assert isinstance(spec, OptionSpec) and spec.name == key and spec.help
        assert fits(spec.default, spec.annotation), (name, key)
    if "grid" in specs:
        # rk45's records fall on a log-SNR grid: its 2-point grid is the whole interval
        default = "uniform_log_snr" if name == "rk45" else "uniform_t"
        assert typing.get_args(specs["grid"].annotation) == GRIDS and specs["grid"].default == default
        with pytest.raises(StudioError, match="grid"):
            sampler(make_method("ddpm"), ToyNet(), (4, 2), 5, grid="cosine")


@pytest.mark.parametrize("family", SCHEDULES)
@pytest.mark.parametrize("grid", GRIDS)
def test_time_grids(family, grid):
    params = dict(SCHEDULES[family])
    schedule = make_schedule(params.pop("family"), **params)
    for t_start in (1.0, 0.55):
        t = time_grid(schedule, 12, grid, t_start)
        assert t.dtype == torch.float64 and len(t) == 12 and t[0] == t_start
        assert bool((t[1:] < t[:-1]).all())
        if grid == "uniform_t":
            assert torch.equal(t, schedule.sampling_times(12) * t_start)
            continue
        assert float(t[-1]) == float(schedule.sampling_times()[-1])  # the schedule's own end
        with torch.no_grad():
            lam = schedule.log_snr(t)
        if grid == "uniform_log_snr":
            var = lam  # equal steps in log-SNR
        else:  # EDM eq. 5: equal steps in sigma~^(1/7), sigma~ = exp(-lambda / 2)
            var = torch.exp(-lam / 14)
        steps = var.diff()
        # a learned schedule's log-SNR is float32 inside (its network's precision)
        tol = (1e-5 if schedule.learned else 1e-9) * (1 + float(var.abs().max()))
        assert torch.allclose(steps, steps.mean().expand_as(steps), rtol=0, atol=tol)
    assert len(time_grid(schedule, 1, grid, 0.3)) == 1


def test_karras_grid_is_dense_near_the_data():
    """EDM's rho = 7 shortens the steps in sigma near sigma_min (Karras et al. sec. 3)."""
    schedule = make_schedule("vdm_fixed")
    sigma = torch.exp(-0.5 * schedule.log_snr(time_grid(schedule, 20, "karras")).double())
    steps = -sigma.diff()
    assert bool((steps[1:] < steps[:-1]).all()) and float(steps[0]) > 100 * float(steps[-1])


@pytest.mark.parametrize("grid", ["uniform_log_snr", "karras"])
def test_sigma_max_jumps_to_it_then_spans_the_rest(grid):
    """With sigma_max below the start's sigma~ = sigma / alpha, the grid's first step goes
    to sigma~ = sigma_max and the other steps-1 points are the grid kind's own from there
    (DDPM's linear betas start at lambda ~ -10, sigma~ ~ 150); above it, nothing changes."""
    schedule = make_schedule("linear", steps=1000)
    sigma_t = lambda times: torch.exp(-0.5 * schedule.log_snr(times).double())
    plain = time_grid(schedule, 12, grid)
    assert float(sigma_t(plain[:1])) > 100
    jumped = time_grid(schedule, 12, grid, sigma_max=8.0)
    assert len(jumped) == 12 and jumped[0] == plain[0] and jumped[-1] == plain[-1]
    assert float(sigma_t(jumped[1:2])) == pytest.approx(8.0, rel=1e-9)
    rest = time_grid(schedule, 11, grid, t_start=float(jumped[1]))  # the grid kind's own from sigma_max
    assert torch.allclose(jumped[1:], rest, atol=1e-12)
    assert torch.equal(time_grid(schedule, 12, grid, sigma_max=1e4), plain)


def test_sigma_max_is_checked_by_name():
    sampler, method = SAMPLERS.get("ddim"), make_method("ddpm")
    for opts, words in (
        ({"sigma_max": 5.0}, "sigma_max = 5.0 applies to the grids uniform_log_snr and karras"),
        ({"sigma_max": 0.0, "grid": "karras"}, "sigma_max = 0.0 must be a number > 0"),
        ({"sigma_max": "5", "grid": "karras"}, "sigma_max = '5'"),
    ):
        with pytest.raises(StudioError, match=words):
            sampler.options(opts)
    assert sampler.options({"sigma_max": 5, "grid": "karras"})["sigma_max"] == 5.0


@pytest.mark.parametrize("sampler_name,opts", [("ddim", {}), ("dpmpp_3m_sde", {"eta": 0.0})])
@pytest.mark.parametrize("grid", ["uniform_log_snr", "karras"])
def test_a_branch_continues_a_sigma_max_grid(sampler_name, opts, grid):
    """From any record, the branch visits the rest of a jumped grid and (deterministic
    samplers, with the multistep history) reproduces the run."""
    sampler, method = SAMPLERS.get(sampler_name), make_method("ddpm")
    net = GaussianDenoiser(True)
    opts = {**opts, "grid": grid, "sigma_max": 3.0}
    full = list(sampler(method, net, (16, 2), 9, torch.Generator().manual_seed(3), **opts))
    assert math.exp(-0.5 * full[1].log_snr) == pytest.approx(3.0, rel=1e-9)
    for k in (0, 1, 2, 5):
        back = full[max(0, k - sampler.history):k][::-1]
        history = {"x0_prev": [r.x0_hat for r in back], "t_prev": [r.t for r in back]} if back and sampler.history else {}
        rest = list(sampler(method, net, (16, 2), sampler.branch_steps(method, 9, k, **opts),
                            x_init=full[k].x_t, t_start=full[k].t, **history, **opts))
        assert len(rest) == len(full) - k
        for a, b in zip(rest, full[k:]):
            assert a.t == pytest.approx(b.t, abs=1e-9)
            assert torch.allclose(a.x_next, b.x_next, atol=1e-5)


# deterministic: "exact" (the branch reproduces the rest of the run), "multistep" (exact
# when given the previous records' x0_hat and t, first order without), None (stochastic)
BRANCHING = [
    ("ddim", {}, "exact"),
    ("euler", {}, "exact"),
    ("heun", {}, "exact"),
    ("rk45", {"rtol": 1e-4, "atol": 1e-4}, "exact"),
    ("dpmpp_2m", {}, "multistep"),
    ("ancestral", {}, None),
    ("langevin", {"n_steps_each": 3}, None),
    ("euler_maruyama", {}, None),
    ("pc", {}, None),
    ("dpmpp_2m_sde", {}, None),
    ("dpmpp_3m_sde", {"eta": 0.0}, "multistep"),
    ("dpmpp_3m_sde", {}, None),
]


# every grid kind on every family for DDIM, Langevin and DPM-Solver++(2M); one grid each
# (round robin) for the others, which share the grid code
BRANCH_CASES = [
    (*spec, method_name, grid)
    for i, spec in enumerate(BRANCHING)
    for j, method_name in enumerate(("ncsn", "ddpm", "vdm"))
    for grid in (GRIDS if spec[0] in ("ddim", "langevin", "dpmpp_2m") else (GRIDS[(i + j) % 3],))
]


@pytest.mark.parametrize("sampler_name,opts,deterministic,method_name,grid", BRANCH_CASES)
def test_branch_continues_on_the_same_grid(sampler_name, opts, deterministic, method_name, grid):
    """A branch from record k (t_start = record.t, x_init = record.x_t, steps =
    branch_steps) visits the rest of the run's grid; with a deterministic sampler it
    reproduces the rest of the run's records."""
    sampler, method = SAMPLERS.get(sampler_name), make_method(method_name)
    net = GaussianDenoiser(method.schedule.variance_preserving)
    steps, opts = 9, {**opts, "grid": grid}
    full = list(sampler(method, net, (16, 2), steps, torch.Generator().manual_seed(3), **opts))
    for k in (0, 4, len(full) - 2):
        branch = sampler.branch_steps(method, steps, k, **opts)
        rest = list(
            sampler(method, net, (16, 2), branch, torch.Generator().manual_seed(4),
                    x_init=full[k].x_t, t_start=full[k].t, **opts)
        )
        assert len(rest) == sampler.num_records(method, branch, **opts)
        # the branch starts at record k's level and visits only the full run's levels
        assert rest[0].t == full[k].t
        full_times = sorted({r.t for r in full})
        for r in rest:
            assert min(abs(r.t - f) for f in full_times) < 1e-9 * max(1.0, r.t)
        assert torch.allclose(rest[0].x0_hat, full[k].x0_hat, atol=1e-6)
        if deterministic == "exact":
            assert len(rest) == len(full) - k
            for a, b in zip(rest, full[k:]):
                assert a.t == pytest.approx(b.t, abs=1e-12)
                assert torch.allclose(a.x_next, b.x_next, atol=1e-5)
        elif deterministic == "multistep":
            assert len(rest) == len(full) - k
            # without its history the branch's first step is DDIM's (first order) ...
            (ddim,) = list(SAMPLERS.get("ddim")(method, net, (16, 2), branch, x_init=full[k].x_t, t_start=full[k].t, grid=grid))[:1]
            assert torch.allclose(rest[0].x_next, ddim.x_next, atol=1e-5)
            if k > 0:  # ... with records k-1, k-2, ...'s x0_hat and t it is the straight run's, every record
                back = full[max(0, k - sampler.history):k][::-1]
                rest = list(sampler(method, net, (16, 2), branch, x_init=full[k].x_t, t_start=full[k].t,
                                    x0_prev=[r.x0_hat for r in back], t_prev=[r.t for r in back], **opts))
                assert not torch.allclose(ddim.x_next, full[k].x_next, atol=1e-4)  # the history matters here
            for a, b in zip(rest, full[k:]):
                assert torch.allclose(a.x_next, b.x_next, atol=1e-6)


def test_langevin_branch_steps_count_levels():
    method, lang = make_method("ncsn"), SAMPLERS.get("langevin")
    # 7 levels x 3 records + the denoising record: record 10 is on level 3
    assert lang.branch_steps(method, 7, 10, n_steps_each=3) == 4
    assert lang.branch_steps(method, 7, 21, n_steps_each=3) == 1  # the denoising record
    assert lang.branch_steps(method, 7, 0, n_steps_each=3) == 7
    for bad in (-1, 22, 2.0):
        with pytest.raises(StudioError, match="index"):
            lang.branch_steps(method, 7, bad, n_steps_each=3)


@pytest.mark.parametrize("sampler_name,method_name", PAIRS)
def test_nfe_and_steps_for_nfe(sampler_name, method_name):
    sampler, method = SAMPLERS.get(sampler_name), make_method(method_name)
    opts = {"n_steps_each": 3} if sampler_name == "langevin" else {}
    if sampler.adaptive:
        pytest.skip("adaptive: evaluations are counted by the records")
    records = list(sampler(method, ToyNet(), (4, 2), 6, torch.Generator().manual_seed(0), **opts))
    assert [r.nfe for r in records] == sorted({r.nfe for r in records})  # strictly growing
    assert records[-1].nfe == sampler.nfe(method, 6, **opts)
    for budget in (1, 2, 5, 19, 20, 50, 1000):
        steps = sampler.steps_for_nfe(method, budget, **opts)
        assert steps >= 1
        if sampler.nfe(method, steps, **opts) <= budget:  # the largest that fits
            assert sampler.nfe(method, steps + 1, **opts) > budget
        else:
            assert steps == 1  # nothing fits: one step
    if sampler_name == "langevin":
        assert sampler.steps_for_nfe(method, 20, **opts) == 6  # 6 x 3 + 1 = 19 <= 20 < 22
    with pytest.raises(StudioError, match="nfe"):
        sampler.steps_for_nfe(method, 0, **opts)
    assert math.isfinite(sampler.nfe(method, 1, **opts))


def test_a_learned_schedule_gets_every_grid():
    method = METHODS.get("vdm")(make_schedule("vdm_learned"))
    for grid in GRIDS:
        x = SAMPLERS.get("ddim")(method, GaussianDenoiser(True), (8, 2), 6, grid=grid)
        assert torch.isfinite(list(x)[-1].x_next).all()


def test_the_cli_lists_every_built_in_sampler():
    from studio.cli import SAMPLER_NAMES

    built_in = {n for n in SAMPLERS.names() if type(SAMPLERS.get(n)).__module__.startswith("studio.core.samplers")}
    assert set(SAMPLER_NAMES) == built_in


def test_branch_history_is_checked():
    sampler, method = SAMPLERS.get("dpmpp_2m"), make_method("vdm")
    net = GaussianDenoiser(True)
    x = torch.zeros(4, 2)
    for kwargs, words in (
        ({"x0_prev": x}, "both x0_prev and t_prev"),
        ({"x0_prev": torch.zeros(3, 2), "t_prev": 0.9}, "x0_prev has shape"),
        ({"x0_prev": x, "t_prev": 0.4}, "t_prev = 0.4"),
        ({"x0_prev": [x, x], "t_prev": [0.7]}, "2 x0_prev and 1 t_prev"),
        ({"x0_prev": [x, x], "t_prev": [0.7, 0.6]}, "t_prev = 0.6"),  # records before the next, in time order
        ({"x0_prev": [x, "x"], "t_prev": [0.7, 0.8]}, "x0_prev has shape str"),
    ):
        with pytest.raises(StudioError, match=words):
            sampler(method, net, (4, 2), 5, x_init=x, t_start=0.5, **kwargs)
    # a sampler reads as much history as its order needs: (2M) the most recent record's
    x0s = [torch.randn(4, 2, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    one = list(sampler(method, net, (4, 2), 5, x_init=x, t_start=0.5, x0_prev=x0s[0], t_prev=0.7))
    two = list(sampler(method, net, (4, 2), 5, x_init=x, t_start=0.5, x0_prev=x0s, t_prev=[0.7, 0.8]))
    assert all(torch.equal(a.x_next, b.x_next) for a, b in zip(one, two))

"""Each family trained with the 2-D MLP for a small CPU budget, then sampled.

Measured on this machine (one thread; moons, 9000 points, 1/3 held out; 1200 Adam
steps of batch 256, MLP 128 x 3; 3000 samples from the EMA weights; sliced W1 with 256
projections; two independent 3000-point draws of moons are 0.016 apart):

    family  schedule                     sampler          SW     prior SW
    ddpm    linear T=200 (5e-4..0.1)     ancestral 200    0.031  0.221
    ncsn    geometric L=30 (5 .. 0.01)   langevin 30x10   0.042  3.30
    vdm     vdm_fixed                    ancestral 200    0.031  0.221

(11-17 s each, training and sampling.) The prior of a variance-preserving
model is N(0, I), which on standardised data is already close in SW (0.22), so the
ratio is a demanding figure; the test asserts < 0.25 of the prior's distance and
< 0.06 absolute (four times the floor).

VDM on 8 gaussians checks the likelihood bound: on held-out points it lies above the
exact NLL (the mixture's density is known) and the gap shrinks with training.
"""

import math

import pytest
import torch

import studio.core.methods  # noqa: F401
import studio.core.networks  # noqa: F401
from studio.core.data.toy import log_density_8gaussians, make_toy
from studio.core.ema import EMA
from studio.core.metrics import bits_per_dim, sliced_wasserstein
from studio.core.registry import METHODS, NETWORKS
from studio.core.samplers import sample
from studio.core.schedules import make_schedule

pytestmark = pytest.mark.slow


def train(method, data, iters, seed=0, hidden=128, depth=3, lr=2e-3, batch=256, decay=0.995, net=None, ema=None, opt=None):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = net or NETWORKS.get("mlp")(data.shape, hidden=hidden, depth=depth)
    params = list(net.parameters()) + list(method.parameters())
    opt = opt or torch.optim.Adam(params, lr=lr)
    ema = ema or EMA(net, decay)
    for _ in range(iters):
        x = data.data[torch.randint(0, len(data), (batch,), generator=g)]
        loss = method.loss(net, x, g).loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(net)
    return net, ema, opt


CASES = {
    "ddpm": (("linear", dict(steps=200, beta_start=5e-4, beta_end=0.1)), "ancestral", 200),
    "ncsn": (("geometric", dict(steps=30, sigma_max=5.0, sigma_min=0.01)), "langevin", 30),
    "vdm": (("vdm_fixed", {}), "ancestral", 200),
}


@pytest.mark.parametrize("name", list(CASES))
def test_family_learns_moons(name):
    (family, params), sampler, steps = CASES[name]
    train_set, held_out = make_toy("moons", 9000, seed=1).split(1 / 3, seed=0)
    method = METHODS.get(name)(make_schedule(family, **params))
    _, ema, _ = train(method, train_set, 1200)
    with torch.no_grad():
        x = sample(sampler, method, ema.module, (3000, 2), steps, generator=torch.Generator().manual_seed(5))
    sw = sliced_wasserstein(x, held_out.data)
    prior = sliced_wasserstein(method.prior_sample((3000, 2), torch.Generator().manual_seed(6)), held_out.data)
    print(f"{name}: SW {sw:.4f}, prior SW {prior:.4f}")
    assert sw < 0.25 * prior
    assert sw < 0.06


def test_ddpm_eps_on_the_cosine_schedule_needs_clip_x0():
    """DDPM with eps prediction on the cosine schedule (T = 1000, beta_T clipped to 0.999,
    alpha_T ~ 5e-5): x0_hat = (x - sigma eps_hat) / alpha_T magnifies the net's eps error
    (~0.05) to ~1000, the first steps carry it into the state and the net, off its
    training distribution there, compounds it (SW in the tens). Clipping x0_hat to a
    bound of the data range gives samples as good as the linear schedule's.
    Measured: ancestral 1000 SW 57 -> 0.038, DDIM 50 SW 879 -> 0.041 (clip_x0 = 3).
    The failure is drawn on 500 points (SW 38-58 ancestral, 843-895 DDIM on seeds 5-8,
    against the bound 1), the fix on 2000 (on 500 points clipped DDIM measured 0.061)."""
    train_set, held_out = make_toy("moons", 9000, seed=1).split(1 / 3, seed=0)
    method = METHODS.get("ddpm")(make_schedule("cosine", steps=1000))
    _, ema, _ = train(method, train_set, 1200)
    for sampler, steps in (("ancestral", 1000), ("ddim", 50)):
        sw = {}
        for clip, n in ((None, 500), (3.0, 2000)):
            with torch.no_grad():
                x = sample(sampler, method, ema.module, (n, 2), steps, generator=torch.Generator().manual_seed(5), clip_x0=clip)
            sw[clip] = sliced_wasserstein(x, held_out.data)
        print(f"{sampler} {steps}: SW without clipping {sw[None]:.3f}, with clip_x0 = 3: {sw[3.0]:.4f}")
        assert sw[None] > 1.0, sampler  # the failure clipping fixes
        assert sw[3.0] < 0.06, sampler


def test_vdm_bound_above_true_nll_and_tightening():
    """VDM on 8 gaussians: the bound on 2000 held-out points (16 stratified times each)
    against their exact NLL, after 300 and after 1500 training steps. Compared point
    by point (paired), so the Monte Carlo error is that of the gap, not of the NLL's
    spread over points. Measured: true NLL 3.537 nats (2.551 bits/dim, raw scale);
    bound 4.22 -> 4.06 nats (3.05 -> 2.93 bits/dim)."""
    data = make_toy("8gaussians", 12000, seed=3)
    train_set, held_out = data.split(1 / 6, seed=0)
    test_x = held_out.data[:2000]
    true_nll = -log_density_8gaussians(held_out.to_raw(test_x))
    method = METHODS.get("vdm")(make_schedule("vdm_fixed"))
    dim = 2

    def gap(ema):
        nats = method.nll_bound(ema.module, test_x, torch.Generator().manual_seed(9), n_t=16)["total"]
        # change of variables: NLL_raw = NLL_model + sum log scale
        return nats.double() + held_out.log_scale_sum() - true_nll

    def se(v):
        return float(v.std()) / math.sqrt(len(v))

    net, ema, opt = train(method, train_set, 300)
    early = gap(ema)
    train(method, train_set, 1200, seed=1, net=net, ema=ema, opt=opt)
    late = gap(ema)
    nll = float(true_nll.mean())
    print(
        f"true NLL {nll:.3f} nats ({bits_per_dim(nll, dim):.3f} bits/dim); gap {float(early.mean()):.3f} +- {se(early):.3f}"
        f" -> {float(late.mean()):.3f} +- {se(late):.3f} nats; bound {nll + float(early.mean()):.3f} -> "
        f"{nll + float(late.mean()):.3f} nats, {bits_per_dim(nll + float(early.mean()), dim):.3f} -> "
        f"{bits_per_dim(nll + float(late.mean()), dim):.3f} bits/dim"
    )
    # the bound lies above the true NLL, by more than its Monte Carlo error
    assert float(late.mean()) > 3 * se(late)
    # and approaches it: the paired improvement is well outside the noise
    assert float((early - late).mean()) > 4 * se(early - late)
    assert float(late.mean()) < 0.9 * float(early.mean())

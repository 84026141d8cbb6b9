"""Metrics, EMA, seeding and the MLP: small checks against known values."""

import io
import math
import random

import numpy as np
import pytest
import torch

import studio.core.networks  # noqa: F401
from studio.core.ema import EMA
from studio.core.errors import ConfigError, StudioError
from studio.core.metrics import bits_per_dim, mmd_rbf, sliced_wasserstein, sorted_quantiles
from studio.core.networks.embedding import NoiseEmbedding
from studio.core.registry import NETWORKS
from studio.core.seeding import get_rng_state, seed_everything, set_rng_state


def test_sliced_wasserstein_of_a_shift():
    """W1 of a shift by c along the unit direction u is |c . u|; its mean over random u
    in 2-D is |c| * 2 / pi."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 2, generator=g)
    assert sliced_wasserstein(a, a.clone()) == 0.0
    sw = sliced_wasserstein(a, a + torch.tensor([1.0, 0.0]), n_projections=2000)
    assert sw == pytest.approx(2 / math.pi, rel=0.03)
    assert sliced_wasserstein(a, a[:500] + 3.0, n_projections=64) > 1.0  # different sizes use quantiles
    with pytest.raises(StudioError, match="dimension"):
        sliced_wasserstein(a, torch.zeros(5, 3))


def test_sorted_quantiles_are_torch_quantile_and_unequal_sizes_use_them():
    g = torch.Generator().manual_seed(1)
    q = torch.linspace(0, 1, 1001, dtype=torch.float64)
    for n in (1, 2, 7, 1000):
        columns = torch.randn(n, 3, generator=g, dtype=torch.float64).sort(0).values
        assert torch.equal(sorted_quantiles(columns, q), torch.quantile(columns, q, dim=0))
    # the SWD of clouds of different sizes: 1-D W1 between quantile functions on the larger size's grid
    a, b = torch.randn(300, 2, generator=g, dtype=torch.float64), torch.randn(1000, 2, generator=g, dtype=torch.float64)
    dirs = torch.randn(2, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    qa, qb = (torch.quantile(x @ dirs, torch.linspace(0, 1, 1000, dtype=torch.float64), dim=0) for x in (a, b))
    expected = float((qa - qb).abs().mean())
    assert sliced_wasserstein(a, b, n_projections=16, seed=5) == pytest.approx(expected, rel=1e-12)


def test_mmd_separates_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    assert abs(mmd_rbf(a, b)) < 0.02
    assert mmd_rbf(a, b + 1.0) > 0.2


def test_bits_per_dim():
    assert bits_per_dim(2 * math.log(2.0), 2) == pytest.approx(1.0)


def test_ema_averages_and_swaps():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.zero_()
    ema = EMA(net, decay=0.9, warmup=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(10):
        ema.update(net)
    assert float(ema.module.weight[0, 0]) == pytest.approx(1 - 0.9**10, rel=1e-5)
    with ema.averaged(net) as averaged:
        assert float(averaged.weight[0, 0].detach()) == pytest.approx(1 - 0.9**10, rel=1e-5)
    assert float(net.weight[0, 0].detach()) == 1.0  # restored
    other = EMA(torch.nn.Linear(2, 1))
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 10 and torch.equal(other.module.weight, ema.module.weight)
    warm = EMA(net, decay=0.999)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with pytest.raises(ConfigError, match="decay"):
        EMA(net, decay=1.5)


def test_rng_state_round_trip_without_pickle():
    g = seed_everything(7)
    state = get_rng_state(g)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    set_rng_state(loaded, g)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])


def test_mlp_contract():
    net = NETWORKS.get("mlp")((2,), hidden=32, depth=2, emb_dim=16)
    x = torch.randn(5, 2)
    lam = torch.tensor([float("inf"), -float("inf"), 1e6, 0.0, -3.0])
    out = net(x, lam)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.count_nonzero(out) == 0  # zero-initialised output: starts predicting 0
    torch.nn.init.normal_(net.out.weight)
    out = net(x, lam)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    # clamped at +-30: +inf and 1e6 embed alike
    torch.testing.assert_close(out[0], net(x[:1], torch.tensor([30.0]))[0])
    with pytest.raises(ConfigError, match="hidden"):
        NETWORKS.get("mlp")((2,), hidden=0)
    with pytest.raises(ConfigError, match="embedding"):
        NETWORKS.get("mlp")((2,), embedding="wavelet")


@pytest.mark.parametrize("kind", ["sinusoidal", "fourier"])
def test_embedding_is_bounded_and_distinguishes_levels(kind):
    emb = NoiseEmbedding(16, kind)
    e = emb(torch.tensor([-30.0, -1.0, 0.0, 1.0, 30.0, float("nan")]).nan_to_num(0.0))
    assert e.shape == (6, 16) and e.abs().max() <= 1.0
    assert (e[1] - e[3]).abs().max() > 1e-2


def test_ema_update_of_k_steps_is_k_updates_with_the_same_weights():
    """update(net, steps=k) (the trainer's every-k-steps EMA) equals k single updates
    while the weights stay put, warm-up ramp included; num_updates counts steps."""
    net = torch.nn.Linear(3, 2)
    one, many = EMA(net, decay=0.99), EMA(net, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            net.weight.add_(1.0)
        for _ in range(10):
            one.update(net)
        many.update(net, steps=10)
        assert torch.allclose(one.module.weight, many.module.weight, atol=1e-6)
    assert one.num_updates == many.num_updates == 30
    assert not torch.allclose(many.module.weight, net.weight)  # still an average, not a copy

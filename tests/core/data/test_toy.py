"""Toy 2-D sets: registered, reproducible, unit scale, and the exact 8-gaussians density."""

import math

import pytest
import torch

import studio.core.data.toy  # noqa: F401  (registers the toy sets)
from studio.core.data.toy import GENERATORS, log_density_8gaussians, make_toy
from studio.core.errors import DataError
from studio.core.registry import DATASETS


@pytest.mark.parametrize("name", list(GENERATORS))
def test_toy_set(name):
    assert DATASETS.entry(name).meta["kind"] == "toy"
    ds = DATASETS.get(name)(n=4000, seed=3)
    assert ds.data.shape == (4000, 2) and ds.data.dtype == torch.float32 and ds.kind == "points"
    assert torch.equal(ds.data, DATASETS.get(name)(n=4000, seed=3).data)  # reproducible
    assert not torch.equal(ds.data, DATASETS.get(name)(n=4000, seed=4).data)
    std = ds.data.std(0)
    assert ((std > 0.5) & (std < 1.5)).all() and (ds.data.mean(0).abs() < 0.35).all()
    small = DATASETS.get(name)(n=10, seed=0)  # fixed constants, whatever the size
    assert torch.equal(small.scale, ds.scale) and torch.equal(small.shift, ds.shift)
    torch.testing.assert_close(ds.from_raw(ds.to_raw(ds.data)), ds.data)


def test_8gaussians_density_is_normalised_and_matches_the_samples():
    # integrate over a grid: the mixture's mass is 1
    side = torch.linspace(-8, 8, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(side, side, indexing="ij")
    dens = log_density_8gaussians(torch.stack([xx.flatten(), yy.flatten()], 1)).exp()
    assert float(dens.sum() * (side[1] - side[0]) ** 2) == pytest.approx(1.0, abs=1e-4)
    # the entropy of the samples: NLL ~ log 8 + log(2 pi e 0.25) (well separated components)
    ds = make_toy("8gaussians", 20000, seed=0)
    nll = -log_density_8gaussians(ds.to_raw(ds.data)).mean()
    assert float(nll) == pytest.approx(math.log(8) + math.log(2 * math.pi * math.e * 0.25), abs=0.03)


def test_bad_arguments():
    with pytest.raises(DataError, match="n = 0"):
        make_toy("moons", 0)
    with pytest.raises(DataError, match="allowed"):
        make_toy("donut")

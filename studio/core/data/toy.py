"""Toy 2-D point sets, generated in memory from a seed (torch only).

Each set is drawn in its usual raw coordinates and brought to roughly unit scale by
FIXED constants (``raw = data * SCALE + SHIFT``), measured once on a large sample and
written here, so a training set and a held-out set of any size share them and a run is
reproducible. ``8gaussians`` has a known density, :func:`log_density_8gaussians`, so
likelihood bounds can be checked against the true negative log-likelihood.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..registry import DATASETS
from .base import Dataset

# 8 gaussians: centres on a circle of radius 4, isotropic std 0.5 (as FFJORD draws them)
GAUSS8_RADIUS = 4.0
GAUSS8_STD = 0.5
GAUSS8_CENTERS = torch.tensor(
    [[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)] for k in range(8)], dtype=torch.float64
) * GAUSS8_RADIUS

# raw = data * scale + shift, per set; scale ~ the raw per-axis std, shift ~ the mean
NORMALISATION: dict[str, tuple[tuple[float, float], float]] = {
    "swiss_roll": ((2.0, 0.2), 6.8),
    "moons": ((0.5, 0.25), 0.85),
    "8gaussians": ((0.0, 0.0), math.sqrt(GAUSS8_RADIUS**2 / 2 + GAUSS8_STD**2)),  # exact per-axis std
    "checkerboard": ((0.0, 0.0), 2.3),
    "rings": ((0.0, 0.0), 2.24),
    "spiral": ((0.0, 0.0), 1.5),
}


def log_density_8gaussians(raw_points: Tensor | np.ndarray) -> Tensor:
    """Exact log-density (nats) of raw 8-gaussians points: an equal mixture of
    N(c_k, 0.5^2 I) with the centres c_k on a circle of radius 4."""
    x = torch.as_tensor(raw_points, dtype=torch.float64)
    if x.dim() != 2 or x.shape[1] != 2:
        raise DataError(f"8gaussians points must have shape (N, 2), got {tuple(x.shape)}")
    d2 = ((x[:, None, :] - GAUSS8_CENTERS[None]) ** 2).sum(-1)
    log_comp = -0.5 * d2 / GAUSS8_STD**2 - math.log(2 * math.pi * GAUSS8_STD**2)
    return torch.logsumexp(log_comp, dim=1) - math.log(8.0)


def _swiss_roll(n: int, g: torch.Generator) -> Tensor:
    # scikit-learn's make_swiss_roll (x, z plane), noise 0.5
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
    return x + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _moons(n: int, g: torch.Generator) -> Tensor:
    # scikit-learn's make_moons, noise 0.05
    n_out = n // 2
    theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
    x = torch.where((torch.arange(n) < n_out)[:, None], outer, inner)
    x = x[torch.randperm(n, generator=g)]
    return x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _8gaussians(n: int, g: torch.Generator) -> Tensor:
    k = torch.randint(0, 8, (n,), generator=g)
    return GAUSS8_CENTERS[k] + GAUSS8_STD * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    # 4 x 4 board on [-4, 4]^2, the 8 "black" unit-2 squares filled uniformly (FFJORD)
    x1 = 4 * torch.rand(n, generator=g, dtype=torch.float64) - 2
    x2 = torch.rand(n, generator=g, dtype=torch.float64) - torch.randint(0, 2, (n,), generator=g).double() * 2
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], 1) * 2


def _rings(n: int, g: torch.Generator) -> Tensor:
    # 4 concentric circles of radii 1..4 (as FFJORD's rings), points shared by
    # circumference, noise 0.08
    radii = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    k = torch.multinomial(radii / radii.sum(), n, replacement=True, generator=g)
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    x = radii[k, None] * torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    return x + 0.08 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _spiral(n: int, g: torch.Generator) -> Tensor:
    # two interleaved arms r = theta / pi (1.5 turns each), noise 0.07
    theta = 3 * math.pi * torch.sqrt(torch.rand(n, generator=g, dtype=torch.float64))
    arm = torch.randint(0, 2, (n,), generator=g).double() * math.pi
    r = theta / math.pi
    x = torch.stack([r * torch.cos(theta + arm), r * torch.sin(theta + arm)], 1)
    return x + 0.07 * torch.randn(n, 2, generator=g, dtype=torch.float64)


GENERATORS: dict[str, Callable[[int, torch.Generator], Tensor]] = {
    "swiss_roll": _swiss_roll,
    "moons": _moons,
    "8gaussians": _8gaussians,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "spiral": _spiral,
}


def make_toy(name: str, n: int = 10000, seed: int = 0) -> Dataset:
    """Draw ``n`` points of toy set ``name`` with ``seed`` and normalise them."""
    if name not in GENERATORS:
        raise DataError(f"unknown toy set {name!r}; allowed: {', '.join(GENERATORS)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"toy set {name!r}: n = {n!r} must be an integer >= 1")
    g = torch.Generator().manual_seed(int(seed))
    raw = GENERATORS[name](int(n), g)
    shift, scale = NORMALISATION[name]
    shift_t = torch.tensor(shift, dtype=torch.float32)
    scale_t = torch.full((2,), float(scale), dtype=torch.float32)
    data = ((raw - torch.tensor(shift, dtype=torch.float64)) / scale).float()
    return Dataset(name, data, "points", shift_t, scale_t, {"source": "toy", "seed": int(seed), "n": int(n)})


def _register(name: str) -> None:
    def factory(n: int = 10000, seed: int = 0) -> Dataset:
        return make_toy(name, n=n, seed=seed)

    factory.__name__ = f"toy_{name}"
    factory.__doc__ = f"Toy 2-D set {name!r}: n points drawn with seed."
    DATASETS.register(name, factory, kind="toy")


for _name in GENERATORS:
    _register(_name)

"""The Frechet distance between Gaussians fitted to feature sets, against its closed form."""

from __future__ import annotations

import pytest
import torch

from studio.core.errors import StudioError
from studio.core.metrics import frechet_distance


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    # N(0, I) vs N(m, s^2 I) in d dimensions: |m|^2 + d (1 + s^2 - 2 s)
    a = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 3.0 + torch.tensor([1.0, 0.0, -2.0, 0.5], dtype=torch.float64)
    expected = (1.0 + 4.0 + 0.25) + 4 * (1 + 9 - 6)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_frechet_distance_of_correlated_covariances():
    # non-commuting covariances: Tr sqrt(C_a C_b) is not sum sqrt(eig_a eig_b)
    ca = torch.tensor([[2.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    cb = torch.tensor([[1.0, -0.5], [-0.5, 3.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(40000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(ca).T
    b = torch.randn(40000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cb).T
    eig = torch.linalg.eigvals(ca @ cb)  # real, positive: similar to a PSD matrix
    expected = float(ca.trace() + cb.trace() - 2 * eig.real.clamp(min=0).sqrt().sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)


def test_frechet_distance_rejects_mismatched_sets():
    with pytest.raises(StudioError, match="dimension 3 and 2"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(StudioError, match="at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))

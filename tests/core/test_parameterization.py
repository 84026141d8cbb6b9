"""The reparameterization triangle: eps <-> x0 <-> v <-> score round trips."""

import itertools

import pytest
import torch

from studio.core.parameterization import KINDS, Prediction, convert, from_x0_eps, q_sample, to_x0_eps


def _levels(process: str, n: int, dtype):
    g = torch.Generator().manual_seed(1)
    if process == "vp":
        lam = torch.linspace(-12, 12, n, dtype=dtype)
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    sigma = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(-4.6, 3.9, generator=g)).to(dtype)
    return torch.ones(n, dtype=dtype), sigma  # VE: alpha = 1, sigma in [0.01, 50]


@pytest.mark.parametrize("process", ["vp", "ve"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-3)])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(process, dtype, tol, kind):
    """x0, eps -> kind -> x0, eps at log-SNR -12..12 (VP) or sigma 0.01..50 (VE)."""
    g = torch.Generator().manual_seed(0)
    alpha, sigma = _levels(process, 64, dtype)
    x0 = torch.randn(64, 3, generator=g, dtype=torch.float64).to(dtype)
    eps = torch.randn(64, 3, generator=g, dtype=torch.float64).to(dtype)
    x_t = q_sample(x0, eps, alpha, sigma)
    value = from_x0_eps(kind, Prediction(x0, eps), alpha, sigma)
    back = to_x0_eps(kind, value, x_t, alpha, sigma)
    torch.testing.assert_close(back.x0, x0, atol=tol, rtol=tol)
    torch.testing.assert_close(back.eps, eps, atol=tol, rtol=tol)


@pytest.mark.parametrize("process", ["vp", "ve"])
def test_convert_chain_returns_to_start(process):
    g = torch.Generator().manual_seed(2)
    alpha, sigma = _levels(process, 32, torch.float64)
    x_t = torch.randn(32, 2, generator=g, dtype=torch.float64) * (alpha**2 + sigma**2).sqrt()[:, None]
    start = torch.randn(32, 2, generator=g, dtype=torch.float64)
    for a, b in itertools.permutations(KINDS, 2):
        there = convert(start, a, b, x_t, alpha, sigma)
        torch.testing.assert_close(convert(there, b, a, x_t, alpha, sigma), start, rtol=1e-9, atol=1e-9)


def test_known_values():
    """score = -eps / sigma (Song & Ermon), v = alpha eps - sigma x0 (Salimans & Ho)."""
    alpha, sigma = torch.tensor([0.6]), torch.tensor([0.8])
    x0, eps = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 0.25]])
    p = Prediction(x0, eps)
    torch.testing.assert_close(from_x0_eps("v", p, alpha, sigma), 0.6 * eps - 0.8 * x0)
    torch.testing.assert_close(from_x0_eps("score", p, alpha, sigma), -eps / 0.8)
    torch.testing.assert_close(p.score(sigma), -eps / 0.8)

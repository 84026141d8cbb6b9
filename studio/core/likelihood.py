"""Exact likelihood by the probability-flow ODE (Song et al. 2021, sec. 4.3 and appendix
D.2; score_sde's ``likelihood.py``): the instantaneous change of variables (Chen et al.
2018, "Neural ODEs", theorem 1) along the ODE's path from the data to the prior,

    log p_0(x) = log p_prior(z) + int_{lambda_0}^{lambda_1} div v(x_lambda, lambda) dlambda,

with ``v = dx/dlambda`` the ODE in log-SNR of samplers.adaptive (the same curve as the
t-ODE, Kingma et al. 2021 sec. 5.1) and ``z`` the ODE's end at t = 1. The divergence is
exact for low dimensions (autograd, one backward pass per dimension: 2-D points) and the
Hutchinson-Skilling estimate ``e^T (dv/dx) e`` with one Rademacher probe held fixed over
the solve for images (Grathwohl et al. 2019, FFJORD). dopri5 (torchdiffeq) solves the
augmented ODE at rtol = atol = 1e-5, as score_sde does.

8-bit data: :func:`uniform_dequantize` spreads each level over its bin,
``y = (k + u) / L``, u ~ U[0, 1); then ``log P(k) >= E_u log p(y) - D log L`` (Song et
al. appendix D.2, Ho et al. 2020), i.e. bits/dim on the levels = bits/dim of the [0, 1]
density + log2 L.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .errors import StudioError
from .samplers.adaptive import LogSNRFlow, check_tolerance
from .samplers.grids import log_snr_of

EXACT_MAX_DIM = 16  # exact divergence up to this many dimensions (one backward pass each)
DIVERGENCES = ("auto", "exact", "hutchinson")


class Likelihood(NamedTuple):
    """Per-sample figures in nats: ``log_p = prior_log_p + delta_log_p``; ``z`` the
    latent at t = 1; ``nfe`` the network evaluations of the solve (each with its
    divergence's backward passes)."""

    log_p: Tensor
    prior_log_p: Tensor
    delta_log_p: Tensor
    z: Tensor
    nfe: int


def gaussian_log_density(z: Tensor, std: float) -> Tensor:
    """log N(z; 0, std^2 I) per sample."""
    d = z[0].numel()
    return -0.5 * (z.flatten(1) ** 2).sum(1) / std**2 - d * (math.log(std) + 0.5 * math.log(2 * math.pi))


class AugmentedFlow:
    """(dx/dlambda, div) of the probability-flow ODE, for torchdiffeq's tuple states."""

    def __init__(self, flow: LogSNRFlow, exact: bool, probe: Tensor | None):
        self.flow, self.exact, self.probe = flow, exact, probe

    def __call__(self, log_snr: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x = state[0]
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = self.flow.velocity(x, float(log_snr))
            if self.exact:
                flat_v, d = v.flatten(1), x[0].numel()
                div = torch.zeros(len(x), dtype=x.dtype, device=x.device)
                for i in range(d):  # d/dx_i of v_i, every sample at once (samples are independent)
                    (grad,) = torch.autograd.grad(flat_v[:, i].sum(), x, retain_graph=i + 1 < d)
                    div = div + grad.flatten(1)[:, i]
            else:  # Hutchinson-Skilling: E[e^T J e] = tr J for Rademacher e
                (grad,) = torch.autograd.grad((v * self.probe).sum(), x)
                div = (grad * self.probe).flatten(1).sum(1)
        return v.detach(), div.detach()


def ode_log_likelihood(
    method: Any,
    net: nn.Module,
    x: Tensor,
    divergence: str = "auto",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> Likelihood:
    """log p(x) in nats of data ``x`` (model range, ``(B, *data_shape)``) under the
    probability-flow ODE of ``method``'s schedule and the network's score, from t = 0
    (the schedule's smallest noise level) to t = 1 and its prior N(0, prior_std^2 I)."""
    if divergence not in DIVERGENCES:
        raise StudioError(f"divergence = {divergence!r} is not allowed; allowed: {', '.join(DIVERGENCES)}")
    check_tolerance("likelihood", "rtol", rtol)
    check_tolerance("likelihood", "atol", atol)
    schedule = method.schedule
    ends = log_snr_of(schedule, torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist()
    if not all(math.isfinite(v) for v in ends):
        raise StudioError(
            f"the ODE likelihood needs a finite log-SNR at t = 0 and t = 1; schedule {schedule.family!r} has {ends}"
        )
    exact = divergence == "exact" or (divergence == "auto" and x[0].numel() <= EXACT_MAX_DIM)
    probe = None
    if not exact:
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(0)
        probe = torch.randint(0, 2, x.shape, generator=generator, device=x.device).to(x.dtype) * 2 - 1
    flow = LogSNRFlow(net, method.prediction, schedule.variance_preserving)
    span = torch.tensor(ends, dtype=torch.float64, device=x.device)
    state = (x.detach(), torch.zeros(len(x), dtype=x.dtype, device=x.device))
    from torchdiffeq import odeint  # here, not at import: it pulls in scipy (~1 s of the app's launch)

    xs, deltas = odeint(AugmentedFlow(flow, exact, probe), state, span, rtol=rtol, atol=atol, method="dopri5")
    z, delta = xs[-1], deltas[-1]
    prior = gaussian_log_density(z, schedule.prior_std())
    return Likelihood(prior + delta, prior, delta, z, flow.nfe)


def uniform_dequantize(raw: Tensor, levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Raw data in [0, 1] on ``levels`` levels (k / (levels - 1)) -> ``(k + u) / levels``."""
    k = torch.round(raw.clamp(0.0, 1.0) * (levels - 1))
    u = torch.rand(raw.shape, generator=generator, dtype=raw.dtype, device=raw.device)
    return (k + u) / levels

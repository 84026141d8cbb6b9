"""The reparameterization triangle: eps, x0, v and score are one prediction seen four
ways, for any ``x_t = alpha_t x_0 + sigma_t eps`` (docs/DESIGN.md 1).

* ``x0 = (x_t - sigma eps) / alpha``                       (Ho et al. 2020, eq. 15)
* ``score = grad log q(x_t | x0) = -eps / sigma``          (Song & Ermon 2019, sec. 3.2)
* ``v = alpha eps - sigma x0``                             (Salimans & Ho 2022, sec. 4)

The v formulas below are written for general (alpha, sigma) so they hold for variance
exploding processes too: with ``r = alpha^2 + sigma^2``,
``x0 = (alpha x_t - sigma v) / r`` and ``eps = (sigma x_t + alpha v) / r``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

KINDS = ("eps", "x0", "v", "score")


def expand_like(a: Tensor | float, x: Tensor) -> Tensor:
    """Broadcast a per-sample coefficient of shape (B,) (or a scalar) against x (B, ...)."""
    a = torch.as_tensor(a, dtype=x.dtype, device=x.device)
    if a.dim() == 0:
        return a
    return a.reshape(a.shape[0], *([1] * (x.dim() - 1)))


def input_scale(alpha: Tensor, sigma: Tensor) -> Tensor:
    """EDM's c_in (Karras et al. 2022, table 1) for unit-variance data: scales x_t to
    unit variance so one network serves variance preserving and exploding processes."""
    return torch.rsqrt(alpha**2 + sigma**2)


class Prediction(NamedTuple):
    """A network output seen as both clean data and noise."""

    x0: Tensor
    eps: Tensor

    def score(self, sigma: Tensor) -> Tensor:
        return -self.eps / expand_like(sigma, self.eps)


def to_x0_eps(kind: str, value: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Prediction:
    """Turn a prediction of ``kind`` into (x0, eps); alpha and sigma are (B,) or scalars."""
    a, s = expand_like(alpha, x_t), expand_like(sigma, x_t)
    if kind == "eps":
        return Prediction((x_t - s * value) / a, value)
    if kind == "x0":
        return Prediction(value, (x_t - a * value) / s)
    if kind == "v":
        r = a * a + s * s
        return Prediction((a * x_t - s * value) / r, (s * x_t + a * value) / r)
    if kind == "score":
        eps = -s * value
        return Prediction((x_t - s * eps) / a, eps)
    raise ValueError(f"unknown prediction {kind!r}; allowed: {', '.join(KINDS)}")


def from_x0_eps(kind: str, pred: Prediction, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Express (x0, eps) as a prediction of ``kind``."""
    a, s = expand_like(alpha, pred.x0), expand_like(sigma, pred.x0)
    if kind == "eps":
        return pred.eps
    if kind == "x0":
        return pred.x0
    if kind == "v":
        return a * pred.eps - s * pred.x0
    if kind == "score":
        return -pred.eps / s
    raise ValueError(f"unknown prediction {kind!r}; allowed: {', '.join(KINDS)}")


def convert(value: Tensor, src: str, dst: str, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Convert a prediction from one kind to another at the same (x_t, alpha, sigma)."""
    if src == dst:
        return value
    return from_x0_eps(dst, to_x0_eps(src, value, x_t, alpha, sigma), alpha, sigma)


def q_sample(x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Forward process in one shot: x_t = alpha_t x0 + sigma_t eps (Ho et al. eq. 4)."""
    return expand_like(alpha, x0) * x0 + expand_like(sigma, x0) * eps

"""The loss weighting each objective implies on the log-SNR axis (Kingma & Gao 2023).

Every objective of the studio is, per sample at noise level lambda, a weight times the
squared noise-prediction error:

    loss(lambda) = w(lambda) * ||eps_hat - eps||^2        (Kingma & Gao 2023, eq. 6)

up to one constant factor per objective (DDPM's mean over dimensions, nats against
bits). The weights follow from the reparameterization triangle
(``x0_hat - x0 = -(sigma / alpha)(eps_hat - eps)``, ``v_hat - v = (r / alpha)(eps_hat -
eps)`` with ``r = alpha^2 + sigma^2``):

* eps-MSE, DDPM's L_simple (Ho et al. 2020, eq. 14):  w = 1
* x0-MSE:                                               w = sigma^2 / alpha^2 = e^-lambda
* v-MSE (Salimans & Ho 2022):                           w = r^2 / alpha^2 (VP: 1 + e^-lambda)
* VDM's continuous ELBO (Kingma et al. 2021, eq. 17):  w = -1/2 d lambda / dt = 1 / (2 p(lambda))
* NCSN's sigma^2-weighted score matching (Song & Ermon 2019, eq. 6): w = 1/2
* EDM (Karras et al. 2022, eq. 8 with their lambda(sigma)): w = 1 + e^-lambda / sigma_data^2,
  with its own log-normal density of sigma, when the EDM method is registered.

Training draws lambda from a density p (``noise_levels``), so what it optimises at each
lambda is the *effective weight* p(lambda) w(lambda) (Kingma & Gao's w). VDM's is the
constant 1/2 whatever the schedule: its ELBO depends on the schedule only through the
end points (Kingma et al. 2021, section 5.1).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .errors import UnknownNameError
from .noise_levels import density_at, log_snr_slope, time_at_log_snr
from .registry import METHODS
from .schedules import Schedule

WeightFn = Callable[[np.ndarray, Schedule], np.ndarray]


@dataclass(frozen=True)
class Weighting:
    """One objective's weight on the lambda axis; ``density`` is the objective's own
    noise-level density where it does not draw t ~ U(0, 1) on the schedule (EDM);
    ``continuous_time``: it draws t ~ U(0, 1) even on a DDPM schedule's interpolated
    log-SNR (VDM), so its density there is 1 / |dlambda/dt|, not the steps' histogram."""

    name: str
    label: str
    source: str
    weight: WeightFn
    density: Callable[[np.ndarray], np.ndarray] | None = None
    continuous_time: bool = False


def eps_mse_weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
    return np.ones_like(np.asarray(lam, dtype=np.float64))


def x0_mse_weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
    # ||x0_hat - x0||^2 = (sigma / alpha)^2 ||eps_hat - eps||^2 = e^-lambda ||...||^2
    return np.exp(-np.asarray(lam, dtype=np.float64))


def v_mse_weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
    # v_hat - v = (alpha + sigma^2 / alpha)(eps_hat - eps) = (r / alpha)(eps_hat - eps)
    inv_snr = np.exp(-np.asarray(lam, dtype=np.float64))
    if schedule.variance_preserving:
        return 1.0 + inv_snr  # r = 1, 1 / alpha^2 = 1 + 1 / SNR
    return (1.0 + inv_snr) ** 2  # alpha = 1, r = 1 + sigma^2


def vdm_elbo_weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
    # VDM eq. 17: 1/2 gamma'(t) ||eps - eps_hat||^2 at t = t(lambda)
    t = time_at_log_snr(schedule, lam)
    return 0.5 * np.abs(log_snr_slope(schedule, t).numpy())


def ncsn_dsm_weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
    # sigma^2 * 1/2 ||s + z / sigma||^2 = 1/2 ||eps_hat - z||^2 with s = -eps_hat / sigma
    return np.full_like(np.asarray(lam, dtype=np.float64), 0.5)


BUILTIN = {
    w.name: w
    for w in (
        Weighting("eps_mse", "eps-MSE (L_simple)", "Ho et al. 2020, eq. 14", eps_mse_weight),
        Weighting("x0_mse", "x0-MSE", "Kingma & Gao 2023, table 1", x0_mse_weight),
        Weighting("v_mse", "v-MSE", "Salimans & Ho 2022", v_mse_weight),
        Weighting("vdm_elbo", "VDM ELBO", "Kingma et al. 2021, eq. 17", vdm_elbo_weight, continuous_time=True),
        Weighting("ncsn_dsm", "NCSN sigma^2 DSM", "Song & Ermon 2019, eq. 6", ncsn_dsm_weight),
    )
}

# a built-in method's objective, by its prediction
METHOD_WEIGHTINGS = {
    ("ddpm", "eps"): "eps_mse",
    ("ddpm", "x0"): "x0_mse",
    ("ddpm", "v"): "v_mse",
    ("vdm", "eps"): "vdm_elbo",
    ("ncsn", "eps"): "ncsn_dsm",
}


def _option_default(obj: Any, *names: str) -> float | None:
    """A method's attribute or constructor default under any of ``names``."""
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return None
    for name in names:
        p = params.get(name)
        if p is not None and isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            return float(p.default)
    return None


def _edm_weighting(name: str, obj: Any) -> Weighting:
    """EDM (Karras et al. 2022): loss lambda(sigma) ||D - x||^2 with lambda(sigma) =
    (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 and ln sigma ~ N(P_mean, P_std^2).
    With ||D - x||^2 = sigma^2 / alpha^2 ||eps_hat - eps||^2 = e^-lambda ||...||^2,
    w = 1 + e^-lambda / sigma_data^2, and lambda = -2 ln sigma ~ N(-2 P_mean, 4 P_std^2)."""
    sd = _option_default(obj, "sigma_data") or 0.5
    p_mean = _option_default(obj, "p_mean", "P_mean")
    p_std = _option_default(obj, "p_std", "P_std")
    p_mean = -1.2 if p_mean is None else p_mean
    p_std = 1.2 if p_std is None else p_std

    def weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
        return 1.0 + np.exp(-np.asarray(lam, dtype=np.float64)) / sd**2

    def density(lam: np.ndarray) -> np.ndarray:
        mu, s = -2.0 * p_mean, 2.0 * p_std
        z = (np.asarray(lam, dtype=np.float64) - mu) / s
        return np.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi))

    label = f"EDM (sigma_data {sd:g}, P_mean {p_mean:g}, P_std {p_std:g})"
    return Weighting(name, label, "Karras et al. 2022, eq. 8 and table 1", weight, density)


def _method_weighting(name: str, obj: Any) -> Weighting | None:
    """A registered method that says what it weights: ``loss_weight(log_snr) -> weight``
    (and ``log_snr_density(log_snr)`` when it draws its own levels), or an EDM method."""
    if name == "edm" or getattr(obj, "name", "") == "edm":
        return _edm_weighting(name, obj)
    fn = getattr(obj, "loss_weight", None)
    if callable(fn):
        own = getattr(obj, "log_snr_density", None)

        def weight(lam: np.ndarray, schedule: Schedule) -> np.ndarray:
            return np.asarray(torch.as_tensor(fn(torch.as_tensor(np.asarray(lam, dtype=np.float64)))), dtype=np.float64)

        density = None
        if callable(own):
            density = lambda lam: np.asarray(torch.as_tensor(own(torch.as_tensor(np.asarray(lam, dtype=np.float64)))), dtype=np.float64)
        doc = ((getattr(obj, "__doc__", "") or "").strip().splitlines() or [name])[0]
        return Weighting(name, name, doc, weight, density)
    return None


def weightings() -> dict[str, Weighting]:
    """The built-in weightings and those of registered plugin methods (EDM), by name."""
    out = dict(BUILTIN)
    for entry in METHODS.entries():
        if entry.name in ("ddpm", "vdm", "ncsn"):
            continue
        w = _method_weighting(entry.name, entry.obj)
        if w is not None:
            out[w.name] = w
    return out


def get_weighting(name: str) -> Weighting:
    table = weightings()
    if name not in table:
        raise UnknownNameError(f"unknown weighting {name!r}; allowed: {', '.join(table)}")
    return table[name]


def weighting_for(method: str, prediction: str = "eps") -> Weighting:
    """The objective a method trains (DDPM's by its prediction target)."""
    key = METHOD_WEIGHTINGS.get((method, prediction))
    if key is not None:
        return BUILTIN[key]
    table = weightings()
    if method in table:
        return table[method]
    allowed = sorted({m for m, _ in METHOD_WEIGHTINGS} | (set(table) - set(BUILTIN)))
    raise UnknownNameError(f"method {method!r} (prediction {prediction!r}) has no known weighting; known: {', '.join(allowed)}")


def training_density(schedule: Schedule, weighting: Weighting, lam: np.ndarray) -> np.ndarray:
    """The density of the noise levels training draws: the objective's own (EDM) or
    the schedule's p(lambda)."""
    if weighting.density is not None:
        return weighting.density(lam)
    return density_at(schedule, lam, continuous=weighting.continuous_time)


def effective_weight(schedule: Schedule, weighting: Weighting, lam: np.ndarray) -> np.ndarray:
    """p(lambda) w(lambda): what training optimises at each noise level."""
    lam = np.asarray(lam, dtype=np.float64)
    p = training_density(schedule, weighting, lam)
    w = weighting.weight(lam, schedule)
    return np.where(p > 0, p * np.where(np.isfinite(w), w, 0.0), 0.0)


def normalised(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` scaled to unit area over ``x`` (trapezoid), for overlaying curves whose
    constants differ; all zeros stay zeros."""
    y = np.asarray(y, dtype=np.float64)
    area = float(np.trapezoid(np.where(np.isfinite(y), y, 0.0), x)) if len(x) > 1 else 0.0
    return y / area if area > 0 else y

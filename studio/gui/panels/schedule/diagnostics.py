"""Numbers the schedule editor shows about a schedule, and curves ready to plot.

Plain numpy/torch, no Qt, so the tests check them against closed forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from studio.core.schedules import Schedule

PRIOR_KL_WARN_BITS = 1e-2  # bits/dim of q(x_T|x_0) to the prior: above this, signal is left at T
JUMP_WARN = 2.0  # log-SNR change in one step (SNR x e^2 ~ 7.4) that the sampler must bridge
MAX_PLOT_POINTS = 2001


def plot_curves(schedule: Schedule) -> dict[str, np.ndarray]:
    """Curves against t for the plots, float64, with NaN where a value cannot be drawn
    (log-SNR of -inf at a zero terminal SNR, SNR 0 on a log axis).

    ``beta`` (with its own ``t_beta``) is the per-step beta on the schedule's step grid;
    it is absent for variance-exploding schedules, which have none.
    """
    steps = min(schedule.steps, MAX_PLOT_POINTS - 1)
    c = schedule.curves(steps + 1)  # continuous: t = i / steps, so beta is per step
    out = {k: v.detach().double().numpy().copy() for k, v in c.items()}
    if "beta" in out:
        if schedule.discrete:
            out["t_beta"] = out["t"]
        else:  # drop t = 0: its "beta" is the step from clean data, not a step of the chain
            out["t_beta"], out["beta"] = out["t"][1:], out["beta"][1:]
        out["beta"] = np.where(out["beta"] > 0, out["beta"], np.nan)
    for key in ("log_snr", "snr", "alpha", "sigma", "alpha_bar"):
        out[key] = np.where(np.isfinite(out[key]), out[key], np.nan)
    out["snr"] = np.where(out["snr"] > 0, out["snr"], np.nan)
    return out


@dataclass
class Diagnostics:
    steps: int
    terminal_snr: float
    prior_kl_bits: float | None  # bits/dim for the loaded data; None without data
    t_snr_one: float | None  # where SNR crosses 1 (log-SNR = 0); None if it never does
    max_jump: float  # largest |log-SNR change| between neighbouring steps of the grid
    jump_t: float
    warnings: list[str] = field(default_factory=list)


def prior_kl_bits(schedule: Schedule, data: torch.Tensor) -> float:
    """KL(q(x_1 | x_0) || prior) in bits/dim, averaged over ``data`` (model range).

    q(x_1|x_0) = N(alpha_1 x_0, sigma_1^2 I) and the prior is N(0, p^2 I) with
    p = ``schedule.prior_std()`` (1 for variance preserving), so per sample
    KL = 1/2 sum_d (alpha^2 x_d^2 / p^2 + sigma^2 / p^2 - 1 - log(sigma^2 / p^2)).
    """
    with torch.no_grad():
        alpha, sigma = schedule.alpha_sigma(torch.ones(1, dtype=torch.float64))
    a2, s2 = float(alpha) ** 2, float(sigma) ** 2
    p2 = schedule.prior_std() ** 2
    x = data.reshape(len(data), -1).double()
    dim = x.shape[1]
    mean_sq = float((x**2).sum(1).mean())  # E sum_d x_d^2
    kl = 0.5 * (a2 * mean_sq / p2 + dim * (s2 / p2 - 1.0 - math.log(s2 / p2)))
    return max(0.0, kl) / (dim * math.log(2.0))


def step_log_snrs(schedule: Schedule) -> tuple[np.ndarray, np.ndarray]:
    """(t, log-SNR) on the grid a sampler visits, ascending in t."""
    with torch.no_grad():
        if schedule.discrete:
            t = schedule.step_time(torch.arange(schedule.steps))
            lam = schedule.log_snr_steps
        else:
            t = schedule.sampling_times().flip(0)
            lam = schedule.log_snr(t)
    return t.double().numpy(), lam.double().numpy()


def diagnose(schedule: Schedule, data: torch.Tensor | None = None) -> Diagnostics:
    with torch.no_grad():
        terminal = float(schedule.snr(torch.ones(1, dtype=torch.float64)))
    t, lam = step_log_snrs(schedule)
    finite = np.isfinite(lam)
    jumps = np.abs(np.diff(lam))
    jumps[~(finite[1:] & finite[:-1])] = 0.0  # a zero terminal SNR (-inf) is intended
    k = int(np.argmax(jumps)) if len(jumps) else 0
    max_jump = float(jumps[k]) if len(jumps) else 0.0
    jump_t = float(t[k + 1]) if len(jumps) else 1.0

    curve = plot_curves(schedule)
    lam_c, t_c = curve["log_snr"], curve["t"]
    cross = np.nonzero(np.nan_to_num(lam_c, nan=-np.inf) <= 0.0)[0]
    t_one = None
    if len(cross) and cross[0] > 0:
        i = cross[0]
        l0, l1 = lam_c[i - 1], lam_c[i]
        w = l0 / (l0 - l1) if np.isfinite(l1) and l0 != l1 else 1.0
        t_one = float(t_c[i - 1] + w * (t_c[i] - t_c[i - 1]))
    elif len(cross):
        t_one = float(t_c[0])

    kl = prior_kl_bits(schedule, data) if data is not None and len(data) else None
    warnings = []
    if kl is not None and kl > PRIOR_KL_WARN_BITS:
        warnings.append(
            f"signal left at t = T: prior KL {kl:.3g} bits/dim > {PRIOR_KL_WARN_BITS:g}; "
            "samples start from a prior that does not match q(x_T)"
        )
    if max_jump > JUMP_WARN:
        warnings.append(f"log-SNR jumps by {max_jump:.3g} in one step at t = {jump_t:.3g} (> {JUMP_WARN:g})")
    return Diagnostics(schedule.steps, terminal, kl, t_one, max_jump, jump_t, warnings)

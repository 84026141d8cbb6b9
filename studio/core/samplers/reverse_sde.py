"""Samplers of the reverse-time SDE (Song et al. 2021, eq. 6),
``dx = [f x - g^2 score] dt + g dw_bar``, with ``score = -(x - alpha x0_hat) / sigma^2``
and f, g from core.sde (``g^2 / sigma^2 = 2k``).

* ``euler_maruyama`` (score_sde's ``EulerMaruyamaPredictor``): between grid times t > s,
  ``h = s - t < 0``, ``x_s = x + h ((f + 2k) x - 2k alpha x0_hat) + sigma_t sqrt(2k |h|) z``.
* ``pc`` (score_sde's predictor-corrector sampler, Song et al. Algorithm 2-3): at each
  grid time ``n_corrector`` Langevin corrector steps, then the reverse-diffusion
  predictor. The corrector (``LangevinCorrector``) draws z, sets
  ``eps = 2 a (snr ||z|| / ||score||)^2`` (norms per sample, averaged over the batch;
  ``a = (alpha_t / alpha_s)^2``, the discretised VP's ``1 - beta_i``, 1 on VE) and moves
  ``x + eps score + sqrt(2 eps) z``. The predictor (``ReverseDiffusionPredictor``)
  reverses the Gaussian step ``x_t = r x_s + sigma_{t|s} z`` (``r = alpha_t / alpha_s``,
  ``sigma_{t|s}^2 = sigma_t^2 c``, ``c = 1 - SNR_t / SNR_s``):
  ``x_s = (2 - r) x + sigma_{t|s}^2 score + sigma_{t|s} z = (2 - r - c) x + c alpha_t x0_hat + sigma_t sqrt(c) z``.

* ``dpmpp_2m_sde``: the SDE variant of DPM-Solver++(2M) (Lu et al. 2022; diffusers'
  ``sde-dpmsolver++``): the reverse SDE's linear part solved exactly in the half log-SNR
  ``l = lambda / 2``, ``h = l_s - l_t``, with the same linear multistep x0_hat as
  ``dpmpp_2m``: ``x_s = sigma_s / sigma_t e^{-h} x + alpha_s (1 - e^{-2h}) D + sigma_s
  sqrt(1 - e^{-2h}) z``, ``D = (1 + 1 / 2r) x0_hat - x0_hat_prev / 2r``. With D = x0_hat
  (its first step, or a branch without history) the step is the DDPM posterior
  q(x_s | x_t, x0 = x0_hat), ancestral sampling on the grid. One call per step. Option
  ``eta`` (k-diffusion's) scales the noise between the ODE (0: ``dpmpp_2m`` exactly) and
  the SDE (1, the default): ode.dpmpp_2m_plan.
* ``dpmpp_3m_sde``: DPM-Solver++(3M) SDE (Lu et al. 2022, the third-order multistep
  update; k-diffusion's ``sample_dpmpp_3m_sde``): the same exact linear part, with
  ``x0_hat`` taken as a quadratic in l through this step's and the two previous steps'
  x0_hat, integrated against the SDE's weight e^{-(1 + eta)(l_s - l)} (:func:`dpmpp_3m_plan`).
  Second order on its second step, first on its first; one call per step; ``eta`` as above
  (0: the third-order probability-flow ODE solver).

All end on the data, ``x_0 = x0_hat`` (score_sde's ``noise_removal``); ``pc`` corrects at
the last level first. One record per grid time: ``pc``'s record holds the first call's
predictions (on the state entering the step) and makes ``n_corrector + 1`` calls.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..registry import SAMPLERS
from .base import (
    STEP_OPTIONS, Level, OptionSpec, Sampler, Step, check_int, check_number, grid_times, levels_at, make_step,
    posterior_factor, predict, take_step, to_data,
)
from .ode import DPMSolverPP2M, history_steps, sde_levels


class EulerMaruyama(Sampler):
    """Reverse SDE by Euler-Maruyama (Song et al. 2021; score_sde EulerMaruyamaPredictor)."""

    name = "euler_maruyama"
    specs = STEP_OPTIONS

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        kind = method.prediction
        levels, fs, ks = sde_levels(self.name, method, steps, t_start, opts)
        plan = []
        for i, (t, s) in enumerate(zip(levels, levels[1:])):
            h, f, k = s.t - t.t, fs[i], ks[i]
            noise = t.sigma * math.sqrt(2.0 * k * abs(h))
            plan.append(make_step(kind, t, 1.0 + h * (f + 2.0 * k), -2.0 * h * k * t.alpha, 0.0, noise))
        return plan + [to_data(kind, levels[-1])]


class PCStep(NamedTuple):
    """Langevin corrector steps at ``level``, then ``predictor`` (a plain step)."""

    level: Level
    readout: Step  # the corrector's network readout at this level
    a: float  # (alpha_t / alpha_s)^2
    snr: float
    n_corrector: int
    predictor: Step

    @property
    def evals(self) -> int:
        return self.n_corrector + 1

    def take(
        self, net: nn.Module, x: Tensor, generator: torch.Generator, clip: float | None, past: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor, Tensor]:
        first = None
        for _ in range(self.n_corrector):
            _, x0, eps = predict(self.readout, net, x)
            if first is None:
                first = (x0.clamp(-clip, clip) if clip else x0, eps)
            score = eps * (-1.0 / self.level.sigma)
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            grad_norm = score.flatten(1).norm(dim=1).mean()
            noise_norm = z.flatten(1).norm(dim=1).mean()
            step = 2.0 * self.a * (self.snr * noise_norm / grad_norm) ** 2
            x = x + step * score + torch.sqrt(2.0 * step) * z
        x0, eps, x_next = take_step(self.predictor, net, x, generator, clip)
        return (*(first or (x0, eps)), x_next)


class PredictorCorrector(Sampler):
    """Predictor-corrector (Song et al. 2021, Alg. 2-3): reverse diffusion + Langevin corrector."""

    name = "pc"
    specs = (
        OptionSpec("snr", float, 0.16, "corrector signal-to-noise ratio r: eps = 2 a (r ||z|| / ||score||)^2"),
        OptionSpec("n_corrector", int, 1, "Langevin corrector steps at each grid time (each one network call)"),
        *STEP_OPTIONS,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        check_int(self.name, "n_corrector", opts["n_corrector"], minimum=0)
        check_number(self.name, "snr", opts["snr"])

    def evaluations(self, steps: int, opts: dict[str, Any]) -> int:
        return steps * (int(opts["n_corrector"]) + 1)

    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Any]:
        kind, snr, n_corr = method.prediction, float(opts["snr"]), int(opts["n_corrector"])
        levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
        plan: list[Any] = []
        for i, t in enumerate(levels):
            readout = to_data(kind, t)
            if i + 1 < len(levels):
                s = levels[i + 1]
                r, c = t.alpha / s.alpha, posterior_factor(t.log_snr, s.log_snr)
                predictor = make_step(kind, t, 2.0 - r - c, c * t.alpha, 0.0, t.sigma * math.sqrt(max(c, 0.0)))
                a = r * r
            else:  # the last level: correct, then onto the data (alpha_0 = 1)
                predictor, a = readout, t.alpha**2
            plan.append(PCStep(t, readout, a, snr, n_corr, predictor) if n_corr else predictor)
        return plan


class NoiseScaled:
    """The option ``eta`` of the DPM-Solver++ SDE samplers (k-diffusion's): the noise
    between the probability-flow ODE (0) and the reverse SDE (1, the default)."""

    name: str
    specs = (
        OptionSpec("eta", float, 1.0, "noise: 1 the reverse SDE, 0 the probability-flow ODE, between: both"),
        *STEP_OPTIONS,
    )

    def check_options(self, opts: dict[str, Any]) -> None:
        check_number(self.name, "eta", opts["eta"], 0.0, 1.0, low_closed=True, high_closed=True)


class DPMSolverPP2MSDE(NoiseScaled, DPMSolverPP2M):
    """DPM-Solver++(2M) SDE (Lu et al. 2022): the reverse SDE solved exactly in log-SNR, second order from the previous x0_hat, one call per step."""

    name = "dpmpp_2m_sde"  # eta 0: dpmpp_2m step for step


class DPMSolverPP3MSDE(NoiseScaled, Sampler):
    """DPM-Solver++(3M) SDE (Lu et al. 2022): the reverse SDE solved exactly in log-SNR, third order from the two previous x0_hat, one call per step."""

    name = "dpmpp_3m_sde"  # eta 0: the third-order ODE solver
    history = 2

    def plan(
        self, method: Any, steps: int, t_start: float, opts: dict[str, Any], t_prev: tuple[float, ...] = ()
    ) -> list[Step]:
        return dpmpp_3m_plan(method, steps, t_start, opts, t_prev, float(opts["eta"]))


def dpmpp_3m_plan(
    method: Any, steps: int, t_start: float, opts: dict[str, Any], t_prev: tuple[float, ...], eta: float
) -> list[Step]:
    """DPM-Solver++(3M) with noise ``eta``: in the half log-SNR (h = l_s - l_t, the
    weight's rate ``k = (1 + eta) h``)

        x_s = sigma_s / sigma_t e^{-eta h} x + alpha_s [(1 - e^{-k}) D0 + phi_2 d1 - 2 phi_3 d2]
              + sigma_s sqrt(1 - e^{-2 eta h}) z,

    from the exact solution's integral of x0_hat(l_t + u) = D0 + u D' + u^2 D'' / 2 against
    the weight (1 + eta) e^{-(1 + eta)(h - u)} on [0, h]: ``(1 - e^{-k}) D0 + h phi_2 D' -
    h^2 phi_3 D''`` with ``phi_2 = (e^{-k} - 1) / k + 1``, ``phi_3 = phi_2 / k - 1/2``. The
    divided differences of x0_hat (D0 now, D1 and D2 the two steps before, r0 = h_1 / h and
    r1 = h_2 / h steps ago) ``d10 = (D0 - D1) / r0``, ``d11 = (D1 - D2) / r1`` give ``d1 =
    d10 + (d10 - d11) r0 / (r0 + r1) = h D'`` and ``d2 = (d10 - d11) / (r0 + r1) = h^2 D'' /
    2`` (exact for a quadratic), so d2 enters with ``-2 phi_3``: the weight -phi_3 found in
    some public code leaves an O(h^3) local error (global order 2.2 measured instead of 3:
    tests/core/test_samplers_ode.py). With one previous
    x0_hat the correction is ``phi_2 (D0 - D1) / r0``; with none, the 2M solver's first
    step (DDIM at eta 0, the DDPM posterior at eta 1). A step from lambda = -inf (a
    zero-terminal-SNR start) carries no usable history: the order drops there."""
    kind = method.prediction
    levels = levels_at(method.schedule, grid_times(method.schedule, steps, t_start, opts))
    past = history_steps(method, levels[0], t_prev) if t_prev else []  # h of the steps before, most recent first
    plan = []
    for t, s in zip(levels, levels[1:]):
        h = 0.5 * (s.log_snr - t.log_snr)
        k = (1.0 + eta) * h
        A, noise = s.sigma / t.sigma * math.exp(-eta * h), s.sigma * math.sqrt(-math.expm1(-2.0 * eta * h))
        phi_1 = -math.expm1(-k)
        phi_2 = math.expm1(-k) / k + 1.0
        usable = []  # the previous steps up to the first infinite one (from lambda = -inf)
        for hp in past if math.isfinite(h) else ():
            if not math.isfinite(hp):
                break
            usable.append(hp)
        if len(usable) == 2:
            r0, r1 = usable[0] / h, usable[1] / h
            kappa = (phi_2 * r0 - 2.0 * (phi_2 / k - 0.5)) / (r0 + r1)
            c = ((phi_2 + kappa) / r0, -(phi_2 + kappa) / r0 - kappa / r1, kappa / r1)
        elif len(usable) == 1:
            c = (phi_2 * h / usable[0], -phi_2 * h / usable[0])
        else:
            c = (0.0,)
        plan.append(make_step(kind, t, A, s.alpha * (phi_1 + c[0]), 0.0, noise, tuple(s.alpha * ci for ci in c[1:])))
        past = [h, *past][:2]
    return plan + [to_data(kind, levels[-1])]


SAMPLERS.register("euler_maruyama", EulerMaruyama(), description=EulerMaruyama.__doc__)
SAMPLERS.register("dpmpp_2m_sde", DPMSolverPP2MSDE(), description=DPMSolverPP2MSDE.__doc__)
SAMPLERS.register("dpmpp_3m_sde", DPMSolverPP3MSDE(), description=DPMSolverPP3MSDE.__doc__)
SAMPLERS.register("pc", PredictorCorrector(), description=PredictorCorrector.__doc__)

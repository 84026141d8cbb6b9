"""Noise schedules: one object per schedule, all seen through one curve, the log-SNR.

Every family is a Gaussian diffusion ``x_t = alpha_t x_0 + sigma_t eps`` (docs/DESIGN.md 1),
described by ``lambda_t = log(alpha_t^2 / sigma_t^2)`` for continuous ``t`` in [0, 1]:

* variance preserving (DDPM, VDM, custom): ``alpha_t^2 = sigmoid(lambda_t)``,
  ``sigma_t^2 = sigmoid(-lambda_t)`` (VDM eq. 3-4 with ``gamma = -lambda``);
* variance exploding (NCSN): ``alpha_t = 1``, ``sigma_t = exp(-lambda_t / 2)``.

Discrete DDPM schedules also expose ``betas``, ``alpha_bar`` and the posterior
``q(x_{t-1} | x_t, x_0)`` coefficients (Ho et al. 2020, eq. 6-7). Step ``i`` of a
T-step schedule (0-based, as diffusers) is the paper's ``t = i + 1`` and sits at
continuous time ``(i + 1) / T``.

Schedules are ``nn.Module``s so that a learned one (VDM appendix) trains with the
network and every schedule saves and loads through ``state_dict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .errors import ScheduleError
from .registry import SCHEDULES


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ScheduleError(f"schedule parameter {name} = {value} is not a finite number")
    return value


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps:
        raise ScheduleError(f"schedule parameter steps = {steps!r} must be an integer >= 1")
    if steps < 1:
        raise ScheduleError(f"schedule parameter steps = {steps} must be >= 1")
    return int(steps)


class Schedule(nn.Module, ABC):
    """Base class: subclasses implement :meth:`log_snr`; everything else follows."""

    family: str = ""
    variance_preserving: bool = True
    discrete: bool = False
    learned: bool = False

    def __init__(self, steps: int):
        super().__init__()
        self.steps = _check_steps(steps)

    # --- the one curve -------------------------------------------------------------
    @abstractmethod
    def log_snr(self, t: Tensor) -> Tensor:
        """lambda(t) = log(alpha^2 / sigma^2), strictly decreasing in t (each family's own)."""

    # --- everything derived from it -------------------------------------------------
    def gamma(self, t: Tensor) -> Tensor:
        """VDM's ``gamma(t) = -log SNR(t)``."""
        return -self.log_snr(t)

    def snr(self, t: Tensor) -> Tensor:
        return torch.exp(self.log_snr(t))

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        lam = self.log_snr(t)
        if self.variance_preserving:
            # VDM eq. 4: alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma)
            return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
        return torch.ones_like(lam), torch.exp(-0.5 * lam)

    def alpha(self, t: Tensor) -> Tensor:
        return self.alpha_sigma(t)[0]

    def sigma(self, t: Tensor) -> Tensor:
        return self.alpha_sigma(t)[1]

    def sampling_times(self, n: int | None = None) -> Tensor:
        """Descending continuous times a sampler visits, noisiest first (float64).

        Variance preserving: ``t_i = i / n`` for ``i = n .. 1`` (``t = 0`` is the data).
        Variance exploding overrides this with its noise levels.
        """
        n = self.steps if n is None else _check_steps(n)
        return torch.arange(n, 0, -1, dtype=torch.float64) / n

    def prior_std(self) -> float:
        """Standard deviation of the prior ``p(x_1)`` a sampler starts from."""
        return 1.0 if self.variance_preserving else float(self.sigma(torch.ones(1, dtype=torch.float64)))

    def curves(self, n: int = 512) -> dict[str, Tensor]:
        """Curves for plots and the CLI, against continuous t in (0, 1]."""
        with torch.no_grad():
            if self.discrete:
                t = torch.arange(1, self.steps + 1, dtype=torch.float64) / self.steps
            else:
                t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
            lam = self.log_snr(t).double()
            alpha, sigma = self.alpha_sigma(t)
            out = {
                "t": t,
                "log_snr": lam,
                "snr": torch.exp(lam),
                "alpha": alpha.double(),
                "sigma": sigma.double(),
                "alpha_bar": (alpha.double() ** 2),
            }
            if self.discrete:
                out["beta"] = self.betas.clone()
            elif self.variance_preserving:
                # beta of the t-grid discretisation, beta_i = 1 - abar_i / abar_{i-1}
                abar = out["alpha_bar"]
                prev = torch.cat([abar.new_ones(1), abar[:-1]])
                out["beta"] = 1.0 - abar / prev
            return out

    # --- serialisation ---------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments (plain types) that rebuild this schedule."""
        return {"steps": self.steps}

    def to_dict(self) -> dict[str, Any]:
        d = {"family": self.family, **self.params()}
        if self.learned:
            d["state"] = {k: v.detach().cpu().tolist() for k, v in self.state_dict().items()}
        return d

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params().items())


def schedule_from_dict(d: dict[str, Any]) -> Schedule:
    """Inverse of :meth:`Schedule.to_dict` (JSON round trip)."""
    d = dict(d)
    family = d.pop("family", None)
    if family is None:
        raise ScheduleError("schedule has no 'family'; allowed: " + ", ".join(SCHEDULES.names()))
    state = d.pop("state", None)
    sched = make_schedule(family, **d)
    if state is not None:
        sched.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
    return sched


def make_schedule(family: str, **params: Any) -> Schedule:
    """Build a registered schedule by name; unknown parameters are errors naming them."""
    factory = SCHEDULES.get(family)
    import inspect

    allowed = [p for p in inspect.signature(factory).parameters]
    for key in params:
        if key not in allowed:
            raise ScheduleError(
                f"unknown parameter {key!r} for schedule {family!r}; allowed: {', '.join(allowed)}"
            )
    return factory(**params)


# ==================================================================================
# Discrete, variance preserving (DDPM)
# ==================================================================================


def _check_log_snr_steps(lam: Tensor, betas: Tensor, allow_last_inf: bool) -> None:
    """Betas in (0, 1) are not enough in float64: large ones over many steps make
    alpha_bar underflow to 0 (log-SNR -inf long before the end, every later step is pure
    noise and 1/alpha_t overflows in the samplers), tiny ones leave alpha_bar unchanged
    (log-SNR flat, two steps at one noise level). Both are refused, naming the step."""
    body = lam[:-1] if allow_last_inf else lam
    bad = ~torch.isfinite(body)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ScheduleError(
            f"log-SNR reaches {float(body[i])} at step {i + 1} of {len(lam)} (alpha_bar underflows to 0 with "
            f"beta = {float(betas[i]):.6g} there); lower beta_end or steps"
        )
    flat = ~(lam[1:] < lam[:-1])
    if flat.any():
        i = int(flat.nonzero()[0]) + 1
        raise ScheduleError(
            f"log-SNR must be strictly decreasing: step {i + 1} has log-SNR {float(lam[i]):.6g}, not below "
            f"{float(lam[i - 1]):.6g} of step {i} (beta[{i}] = {float(betas[i]):.3g} leaves alpha_bar unchanged in float64)"
        )


class DiscreteSchedule(Schedule):
    """A DDPM schedule given by its betas (Ho et al. 2020, section 2)."""

    discrete = True
    family = "betas"

    def __init__(self, betas: Tensor | Sequence[float], **params: Any):
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        super().__init__(len(betas))
        self._params = params
        bad = ~torch.isfinite(betas)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ScheduleError(f"beta[{i}] = {float(betas[i])} is not a finite number")
        out = (betas <= 0) | (betas >= 1)
        # zero-terminal-SNR rescaling makes the last beta exactly 1 (Lin et al. 2024)
        if params.get("zero_terminal_snr"):
            out[-1] = bool(betas[-1] <= 0 or betas[-1] > 1)
        if out.any():
            i = int(out.nonzero()[0])
            raise ScheduleError(f"beta[{i}] = {float(betas[i]):.6g} is outside (0, 1)")
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)
        self.register_buffer("alpha_bar_prev", alpha_bar_prev, persistent=False)
        # Ho et al. eq. 7: beta~_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t
        posterior_variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * betas
        self.register_buffer("posterior_variance", posterior_variance, persistent=False)
        # beta~_1 = 0: clip the log as Ho et al.'s code does (log of beta~_2)
        clipped = torch.cat([posterior_variance[1:2], posterior_variance[1:]]) if len(betas) > 1 else betas
        self.register_buffer("posterior_log_variance_clipped", torch.log(clipped), persistent=False)
        # Ho et al. eq. 7: mu~_t = c1 x_0 + c2 x_t
        self.register_buffer(
            "posterior_mean_coef1", betas * alpha_bar_prev.sqrt() / (1.0 - alpha_bar), persistent=False
        )
        self.register_buffer(
            "posterior_mean_coef2", (1.0 - alpha_bar_prev) * alphas.sqrt() / (1.0 - alpha_bar), persistent=False
        )
        lam = torch.log(alpha_bar) - torch.log1p(-alpha_bar)
        _check_log_snr_steps(lam, betas, allow_last_inf=bool(params.get("zero_terminal_snr")))
        self.register_buffer("log_snr_steps", lam, persistent=False)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, **self._params} if self._params else {"betas": self.betas.tolist()}

    def step_time(self, i: Tensor | int) -> Tensor:
        """Continuous time of step index ``i`` (0-based): ``(i + 1) / T``."""
        return (torch.as_tensor(i, dtype=torch.float64) + 1.0) / self.steps

    def step_index(self, t: Tensor) -> Tensor:
        """Nearest step index (0-based) of continuous time ``t``."""
        return (torch.as_tensor(t, dtype=torch.float64) * self.steps).round().long().clamp(1, self.steps) - 1

    def log_snr(self, t: Tensor) -> Tensor:
        """Piecewise-linear log-SNR through the steps at ``t = (i + 1) / T``; linear
        extrapolation below ``1 / T`` keeps it finite and strictly decreasing at ``t = 0``."""
        t = torch.as_tensor(t)
        dtype = t.dtype if t.is_floating_point() else torch.float64
        lam = self.log_snr_steps
        T = self.steps
        if T == 1:
            return torch.full_like(t, float(lam[0]), dtype=dtype)
        pos = t.to(torch.float64) * T - 1.0
        lo = pos.floor().clamp(0, T - 2).long()
        w = pos - lo
        a, b = lam[lo], lam[lo + 1]
        # guard 0 * inf at a zero-terminal-SNR step (lambda_T = -inf); w < 0 (t < 1 / T) extrapolates
        out = torch.where(w == 0, a, torch.where(w >= 1, b, a + w * (b - a)))
        return out.to(dtype)


def _beta_bounds(beta_start: float, beta_end: float) -> tuple[float, float]:
    beta_start = _check_finite("beta_start", beta_start)
    beta_end = _check_finite("beta_end", beta_end)
    for name, v in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < v < 1.0:
            raise ScheduleError(f"schedule parameter {name} = {v} is outside (0, 1)")
    return beta_start, beta_end


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Lin et al. 2024, Algorithm 1: shift and scale sqrt(abar) so that abar_T = 0
    while abar_1 is kept."""
    alpha_bar_sqrt = torch.cumprod(1.0 - betas, 0).sqrt()
    first, last = alpha_bar_sqrt[0].clone(), alpha_bar_sqrt[-1].clone()
    alpha_bar_sqrt = (alpha_bar_sqrt - last) * first / (first - last)
    alpha_bar = alpha_bar_sqrt**2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1.0 - alphas


def _discrete(family: str, betas: Tensor, zero_terminal_snr: bool, **params: Any) -> DiscreteSchedule:
    if zero_terminal_snr:
        betas = rescale_zero_terminal_snr(betas)
    sched = DiscreteSchedule(betas, **params, zero_terminal_snr=bool(zero_terminal_snr))
    sched.family = family
    return sched


@SCHEDULES.register("linear", kind="ddpm")
def linear(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, zero_terminal_snr: bool = False):
    """DDPM linear betas (Ho et al. 2020, section 4: 1e-4 .. 0.02, T = 1000)."""
    steps = _check_steps(steps)
    b0, b1 = _beta_bounds(beta_start, beta_end)
    betas = torch.linspace(b0, b1, steps, dtype=torch.float64)
    return _discrete("linear", betas, zero_terminal_snr, steps=steps, beta_start=b0, beta_end=b1)


@SCHEDULES.register("quadratic", kind="ddpm")
def quadratic(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, zero_terminal_snr: bool = False):
    """Betas linear in sqrt(beta) (the 'scaled_linear' of latent diffusion)."""
    steps = _check_steps(steps)
    b0, b1 = _beta_bounds(beta_start, beta_end)
    betas = torch.linspace(b0**0.5, b1**0.5, steps, dtype=torch.float64) ** 2
    return _discrete("quadratic", betas, zero_terminal_snr, steps=steps, beta_start=b0, beta_end=b1)


def cosine_alpha_bar(t: Tensor, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal 2021, eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2((t + s)/(1 + s) pi/2)."""
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f / f0


@SCHEDULES.register("cosine", kind="ddpm")
def cosine(steps: int = 1000, s: float = 0.008, max_beta: float = 0.999, zero_terminal_snr: bool = False):
    """Nichol & Dhariwal 2021 cosine schedule, betas clipped at 0.999."""
    steps = _check_steps(steps)
    s = _check_finite("s", s)
    max_beta = _check_finite("max_beta", max_beta)
    if s < 0:
        raise ScheduleError(f"schedule parameter s = {s} must be >= 0")
    if not 0 < max_beta < 1:
        raise ScheduleError(f"schedule parameter max_beta = {max_beta} is outside (0, 1)")
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    abar = cosine_alpha_bar(t, s)
    # eq. 17 footnote: beta_t = 1 - abar_t / abar_{t-1}, clipped to max_beta
    betas = (1.0 - abar[1:] / abar[:-1]).clamp(max=max_beta)
    return _discrete("cosine", betas, zero_terminal_snr, steps=steps, s=s, max_beta=max_beta)


@SCHEDULES.register("sigmoid", kind="ddpm")
def sigmoid(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, zero_terminal_snr: bool = False):
    """Betas along a sigmoid of linspace(-6, 6) between beta_start and beta_end (GeoDiff)."""
    steps = _check_steps(steps)
    b0, b1 = _beta_bounds(beta_start, beta_end)
    betas = torch.sigmoid(torch.linspace(-6, 6, steps, dtype=torch.float64)) * (b1 - b0) + b0
    return _discrete("sigmoid", betas, zero_terminal_snr, steps=steps, beta_start=b0, beta_end=b1)


# ==================================================================================
# Variance exploding (NCSN)
# ==================================================================================


class GeometricSchedule(Schedule):
    """NCSN noise levels: sigma_1 > ... > sigma_L geometric (Song & Ermon 2019, section 4.2).

    Continuous: ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``; level ``i`` (0-based,
    sigma_1 = sigma_max first) sits at ``t = 1 - i / (L - 1)``.
    """

    family = "geometric"
    variance_preserving = False

    def __init__(self, steps: int = 232, sigma_max: float = 50.0, sigma_min: float = 0.01):
        super().__init__(steps)
        self.sigma_max = _check_finite("sigma_max", sigma_max)
        self.sigma_min = _check_finite("sigma_min", sigma_min)
        if self.sigma_min <= 0:
            raise ScheduleError(f"schedule parameter sigma_min = {self.sigma_min} must be > 0")
        if self.sigma_min >= self.sigma_max:
            raise ScheduleError(
                f"schedule parameter sigma_min = {self.sigma_min} must be < sigma_max = {self.sigma_max}"
            )
        self.register_buffer("sigmas", self.sigma(self.sampling_times()), persistent=False)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "sigma_max": self.sigma_max, "sigma_min": self.sigma_min}

    def log_snr(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        log_sigma = math.log(self.sigma_min) + t * (math.log(self.sigma_max) - math.log(self.sigma_min))
        return -2.0 * log_sigma

    def sampling_times(self, n: int | None = None) -> Tensor:
        n = self.steps if n is None else _check_steps(n)
        if n == 1:
            return torch.ones(1, dtype=torch.float64)
        return torch.linspace(1.0, 0.0, n, dtype=torch.float64)


SCHEDULES.register("geometric", GeometricSchedule, kind="ncsn")


# ==================================================================================
# Continuous, variance preserving (VDM)
# ==================================================================================


class VDMFixedSchedule(Schedule):
    """VDM's fixed linear gamma(t) = gamma_min + (gamma_max - gamma_min) t (Kingma et al. 2021)."""

    family = "vdm_fixed"

    def __init__(self, steps: int = 1000, gamma_min: float = -13.3, gamma_max: float = 5.0):
        super().__init__(steps)
        self.gamma_min = _check_finite("gamma_min", gamma_min)
        self.gamma_max = _check_finite("gamma_max", gamma_max)
        if self.gamma_min >= self.gamma_max:
            raise ScheduleError(
                f"schedule parameter gamma_min = {self.gamma_min} must be < gamma_max = {self.gamma_max}"
            )

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "gamma_min": self.gamma_min, "gamma_max": self.gamma_max}

    def log_snr(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        return -(self.gamma_min + (self.gamma_max - self.gamma_min) * t)


SCHEDULES.register("vdm_fixed", VDMFixedSchedule, kind="vdm")


class _DenseMonotone(nn.Linear):
    """A linear layer with non-negative weights (|W|), so the map is non-decreasing."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight.abs(), self.bias)


class VDMLearnedSchedule(Schedule):
    """VDM's learned gamma(t): a monotone network (Kingma et al. 2021, appendix H; the
    ``NoiseSchedule_NNet`` of the official code), trained jointly through the ELBO.

    gamma(t) = l1(t) + l3(phi(l2(l1(t)))) / n_features with non-negative weights, so it
    is increasing in t, i.e. log-SNR is decreasing.
    """

    family = "vdm_learned"
    learned = True

    def __init__(self, steps: int = 1000, gamma_min: float = -13.3, gamma_max: float = 5.0, n_features: int = 1024):
        super().__init__(steps)
        self.gamma_min = _check_finite("gamma_min", gamma_min)
        self.gamma_max = _check_finite("gamma_max", gamma_max)
        if self.gamma_min >= self.gamma_max:
            raise ScheduleError(
                f"schedule parameter gamma_min = {self.gamma_min} must be < gamma_max = {self.gamma_max}"
            )
        self.n_features = int(n_features)
        self.l1 = _DenseMonotone(1, 1)
        self.l2 = _DenseMonotone(1, self.n_features)
        self.l3 = _DenseMonotone(self.n_features, 1, bias=False)
        with torch.no_grad():  # start at the fixed linear schedule
            self.l1.weight.fill_(self.gamma_max - self.gamma_min)
            self.l1.bias.fill_(self.gamma_min)
            nn.init.normal_(self.l2.weight, std=1.0)
            nn.init.zeros_(self.l2.bias)
            nn.init.normal_(self.l3.weight, std=1e-3)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "gamma_min": self.gamma_min, "gamma_max": self.gamma_max, "n_features": self.n_features}

    def gamma(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        shape, dtype = t.shape, t.dtype if t.is_floating_point() else torch.float32
        x = t.reshape(-1, 1).to(self.l1.weight.dtype)
        h = self.l1(x)
        # the official code feeds 2 (t - 1/2) to l2 and centres the sigmoid
        _h = 2.0 * (torch.sigmoid(self.l2(2.0 * (x - 0.5))) - 0.5)
        h = h + self.l3(_h) / self.n_features
        return h.reshape(shape).to(dtype)

    def log_snr(self, t: Tensor) -> Tensor:
        return -self.gamma(t)


SCHEDULES.register("vdm_learned", VDMLearnedSchedule, kind="vdm")


# ==================================================================================
# Custom: a monotone log-SNR curve through control points
# ==================================================================================


def pchip_slopes(x: Tensor, y: Tensor) -> Tensor:
    """Fritsch-Carlson slopes of a monotone piecewise cubic Hermite interpolant."""
    h = x[1:] - x[:-1]
    delta = (y[1:] - y[:-1]) / h
    n = len(x)
    d = torch.zeros_like(y)
    if n == 2:
        return torch.stack([delta[0], delta[0]])
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same = delta[:-1] * delta[1:] > 0
    hm = (w1 + w2) / (w1 / torch.where(same, delta[:-1], 1.0) + w2 / torch.where(same, delta[1:], 1.0))
    d[1:-1] = torch.where(same, hm, torch.zeros_like(hm))

    def end(h0, h1, m0, m1):  # three-point end slope, shape-preserving
        s = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if s * m0 <= 0:
            return torch.zeros_like(s)
        if m0 * m1 <= 0 and abs(s) > abs(3 * m0):
            return 3 * m0
        return s

    d[0] = end(h[0], h[1], delta[0], delta[1])
    d[-1] = end(h[-1], h[-2], delta[-1], delta[-2])
    return d


MIN_POINT_GAP = 1e-6  # closer control points make the cubic's slopes overflow (NaN log-SNR)


class CustomSchedule(Schedule):
    """Variance-preserving schedule whose log-SNR passes through user control points
    ``(t_k, lambda_k)``, joined by a monotone cubic (PCHIP), so it stays strictly
    decreasing between points that are."""

    family = "custom"

    def __init__(self, points: Sequence[Sequence[float]] = ((0.0, 10.0), (0.5, 0.0), (1.0, -10.0)), steps: int = 1000):
        super().__init__(steps)
        pts = [tuple(p) for p in points]
        if len(pts) < 2:
            raise ScheduleError(f"schedule parameter points needs at least 2 control points, got {len(pts)}")
        for k, p in enumerate(pts):
            if len(p) != 2:
                raise ScheduleError(f"control point {k} = {p!r} must be a pair (t, log_snr)")
            _check_finite(f"points[{k}].t", p[0])
            _check_finite(f"points[{k}].log_snr", p[1])
        t = torch.tensor([p[0] for p in pts], dtype=torch.float64)
        lam = torch.tensor([p[1] for p in pts], dtype=torch.float64)
        if t[0] != 0.0 or t[-1] != 1.0:
            raise ScheduleError(f"control points must start at t = 0 and end at t = 1, got t = {float(t[0])} .. {float(t[-1])}")
        for k in range(1, len(pts)):
            if not t[k] >= t[k - 1] + MIN_POINT_GAP:
                raise ScheduleError(f"control point {k}: t = {float(t[k])} must be at least {MIN_POINT_GAP} above "
                                    f"t = {float(t[k - 1])} of point {k - 1}")
            if not lam[k] < lam[k - 1]:
                raise ScheduleError(
                    f"log-SNR must be strictly decreasing: control point {k} has log_snr = {float(lam[k])} "
                    f">= {float(lam[k - 1])} of point {k - 1}"
                )
        self.points = [(float(a), float(b)) for a, b in pts]
        self.register_buffer("knots_t", t, persistent=False)
        self.register_buffer("knots_lam", lam, persistent=False)
        self.register_buffer("slopes", pchip_slopes(t, lam), persistent=False)

    def params(self) -> dict[str, Any]:
        return {"points": [list(p) for p in self.points], "steps": self.steps}

    def log_snr(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        dtype = t.dtype if t.is_floating_point() else torch.float64
        x = t.to(torch.float64).clamp(0.0, 1.0)
        k = (torch.searchsorted(self.knots_t, x, right=True) - 1).clamp(0, len(self.points) - 2)
        x0, x1 = self.knots_t[k], self.knots_t[k + 1]
        y0, y1 = self.knots_lam[k], self.knots_lam[k + 1]
        d0, d1 = self.slopes[k], self.slopes[k + 1]
        h = x1 - x0
        s = (x - x0) / h
        # cubic Hermite basis
        h00 = (1 + 2 * s) * (1 - s) ** 2
        h10 = s * (1 - s) ** 2
        h01 = s**2 * (3 - 2 * s)
        h11 = s**2 * (s - 1)
        return (h00 * y0 + h10 * h * d0 + h01 * y1 + h11 * h * d1).to(dtype)


SCHEDULES.register("custom", CustomSchedule, kind="custom")


def discretize(schedule: Schedule, steps: int | None = None) -> DiscreteSchedule:
    """A T-step DDPM schedule with ``abar_i = sigmoid(lambda((i + 1) / T))`` from any
    variance-preserving schedule (returns a discrete schedule unchanged)."""
    if schedule.discrete and (steps is None or steps == schedule.steps):
        return schedule  # type: ignore[return-value]
    if not schedule.variance_preserving:
        raise ScheduleError(f"schedule {schedule.family!r} is variance exploding; DDPM needs a variance-preserving one")
    steps = schedule.steps if steps is None else _check_steps(steps)
    with torch.no_grad():
        t = torch.arange(1, steps + 1, dtype=torch.float64) / steps
        abar = torch.sigmoid(schedule.log_snr(t).double())
        prev = torch.cat([abar.new_ones(1), abar[:-1]])
        betas = 1.0 - abar / prev
    # keeps the source's family and parameters, so to_dict() rebuilds the source
    params = {k: v for k, v in schedule.to_dict().items() if k != "family"}
    params["steps"] = steps
    sched = DiscreteSchedule(betas, **params)
    sched.family = schedule.family
    return sched

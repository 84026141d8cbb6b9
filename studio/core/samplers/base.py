"""What every sampler shares: the step record, declared options, the time grid, the
readout of a network output, and the one loop all samplers run.

Every sampler of the studio is linear in the state. With the network output ``out``
at step k (whatever the method's prediction kind),

    x0_hat = p x + q out,     eps_hat = u x + w out        (the reparameterization
                                                            triangle, Ho et al. eq. 15)
    x_next = a x + b out + c z,   z ~ N(0, I)

with per-step numbers that depend only on the schedule. So a sampler is a *plan*:
those numbers, computed once as plain Python floats before the loop, and the loop is
one network call and a handful of fused tensor ops per step (docs/PITFALLS.md: a
diffusers ``step`` costs as much as a small MLP's forward pass).

Records: one :class:`StepRecord` per step, whatever number of network calls a step
makes (``StepRecord.nfe`` counts them so far).

The option ``clip_x0 = b`` (every built-in sampler; off by default) clamps x0_hat to
[-b, b] before it enters the step, ``x_next = A x + B clip(x0_hat) + C eps_hat + D z``
(diffusers' ``clip_sample``; Ho et al. clip to the image range [-1, 1], and the engine
passes b = 1 for images). It matters where alpha is tiny: x0_hat = (x - sigma eps_hat) /
alpha multiplies the network's error by 1 / alpha (~4000 at the end of the cosine
schedule), and a step whose next alpha_s is not as tiny carries that error on.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Iterator, Literal, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..errors import StudioError
from ..schedules import Schedule
from .grids import GRIDS, schedule_device, time_grid

FAMILIES = ("ncsn", "ddpm", "vdm")


class StepRecord(NamedTuple):
    """One step of a reverse process, for a viewer to scrub (docs/INTERFACES.md).

    ``x_t`` is the state entering step ``index`` at continuous time ``t``; the
    predictions are made from it; ``x_next`` is the state after the step. ``nfe``:
    network evaluations of the run so far, this step's included (a step may make more
    than one: Heun, predictor-corrector, an adaptive solver's interval).
    """

    index: int
    t: float
    log_snr: float
    sigma: float
    x_t: Tensor
    x0_hat: Tensor
    eps_hat: Tensor
    x_next: Tensor
    nfe: int = 0


class OptionSpec(NamedTuple):
    """One sampler option, declared for the app's forms and the CLI: ``annotation`` is a
    type like a factory parameter's (``int``, ``float``, ``bool``, ``float | None``,
    ``Literal[...]`` for allowed values)."""

    name: str
    annotation: Any
    default: Any
    help: str


Grid = Literal["uniform_t", "uniform_log_snr", "karras"]
GRID_OPTION = OptionSpec(
    "grid", Grid, "uniform_t",
    "time grid: uniform in t (the schedule's own), uniform in log-SNR, or Karras et al.'s rho = 7 grid on sigma",
)
SIGMA_MAX_OPTION = OptionSpec(
    "sigma_max", float | None, None,
    "uniform_log_snr / karras grids: the first step jumps to the noise level sigma/alpha = sigma_max and "
    "the grid spans the rest (EDM's sigma_max; None: from the start)",
)
CLIP_OPTION = OptionSpec(
    "clip_x0", float | None, None, "clamp x0_hat to [-b, b] before it enters the step (None or 0: off)"
)
# what every built-in sampler with a step count takes after its own options
STEP_OPTIONS = (GRID_OPTION, SIGMA_MAX_OPTION, CLIP_OPTION)


class Level(NamedTuple):
    """A point of the time grid: continuous time and the process there."""

    t: float
    log_snr: float
    alpha: float
    sigma: float


class Step(NamedTuple):
    """The precomputed numbers of one step (see the module docstring)."""

    level: Level
    c_in: float  # network input scale, EDM's c_in
    p: float  # x0_hat = p x + q out
    q: float
    u: float  # eps_hat = u x + w out
    w: float
    a: float  # x_next = a x + b out + c z
    b: float
    c: float
    A: float  # the same step as x_next = A x + B x0_hat + C eps_hat + c z (for clip_x0)
    B: float
    C: float
    # + E[j] times the x0_hat of the step j + 1 back (multistep solvers: DPM-Solver++(2M), (3M))
    E: tuple[float, ...] = ()
    evals = 1  # network calls per step


# ----------------------------------------------------------------------------------
# reading the network output
# ----------------------------------------------------------------------------------


def readout(kind: str, alpha: float, sigma: float) -> tuple[float, float, float, float]:
    """(p, q, u, w) with x0 = p x + q out and eps = u x + w out for a network output
    of ``kind`` at (alpha, sigma); the same formulas as core.parameterization.to_x0_eps."""
    if alpha == 0.0 and kind in ("eps", "score"):
        raise StudioError(
            f"prediction {kind!r} cannot give x0 where alpha = 0 (a zero-terminal-SNR schedule at t = 1); "
            "train with prediction 'v' or 'x0'"
        )
    if kind == "eps":  # x0 = (x - sigma eps) / alpha
        return 1.0 / alpha, -sigma / alpha, 0.0, 1.0
    if kind == "x0":  # eps = (x - alpha x0) / sigma
        return 0.0, 1.0, 1.0 / sigma, -alpha / sigma
    if kind == "v":  # Salimans & Ho 2022: x0 = (a x - s v) / r, eps = (s x + a v) / r
        r = alpha * alpha + sigma * sigma
        return alpha / r, -sigma / r, sigma / r, alpha / r
    if kind == "score":  # eps = -sigma score (Song & Ermon 2019, sec. 3.2)
        return 1.0 / alpha, sigma * sigma / alpha, 0.0, -sigma
    raise StudioError(f"unknown prediction {kind!r}; allowed: eps, x0, v, score")


def make_step(
    kind: str, level: Level, A: float, B: float, C: float, D: float, E: tuple[float, ...] = ()
) -> Step:
    """The step ``x_next = A x + B x0_hat + C eps_hat + D z (+ sum_j E[j] x0_hat_{-j-1})``
    at ``level`` for a network predicting ``kind``, with x0_hat and eps_hat read from the
    output and ``x0_hat_{-j-1}`` the x0_hat of the step j + 1 back."""
    p, q, u, w = readout(kind, level.alpha, level.sigma)
    return Step(level, c_in_of(level), p, q, u, w, A + B * p + C * u, B * q + C * w, D, A, B, C, tuple(E))


def c_in_of(level: Level) -> float:
    """EDM's c_in = 1 / sqrt(alpha^2 + sigma^2) (core.parameterization.input_scale)."""
    return 1.0 / math.sqrt(level.alpha**2 + level.sigma**2)


def to_data(kind: str, level: Level) -> Step:
    """The last step of every sampler: onto the data (t = 0, alpha = 1, sigma = 0),
    where the mean of q(x | x_t, x0_hat) is x0_hat itself; no noise is added."""
    return make_step(kind, level, 0.0, 1.0, 0.0, 0.0)


# ----------------------------------------------------------------------------------
# the time grid
# ----------------------------------------------------------------------------------


def grid_times(schedule: Schedule, steps: int, t_start: float, opts: dict[str, Any]) -> Tensor:
    """Descending times (float64) of a ``steps``-point grid from ``t_start`` on the grid
    the options name (grids.time_grid), so a caller that branches from record k of an
    n-step run (``t_start = record.t``, ``steps = n - k``) continues on the same grid."""
    return time_grid(schedule, steps, opts.get("grid", "uniform_t"), t_start, sigma_max=opts.get("sigma_max"))


def levels_at(schedule: Schedule, times: Tensor) -> list[Level]:
    """log-SNR, alpha and sigma at ``times``, as floats (VDM eq. 3-4 for variance
    preserving processes; alpha = 1, sigma = exp(-lambda / 2) for exploding ones)."""
    device = schedule_device(schedule)
    with torch.no_grad():  # a learned schedule's parameters are not trained here
        lam = schedule.log_snr(times.to(device)).detach().to(torch.float64).cpu()
    if schedule.variance_preserving:
        alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    else:
        alpha, sigma = torch.ones_like(lam), torch.exp(-0.5 * lam)
    return [Level(*v) for v in zip(times.tolist(), lam.tolist(), alpha.tolist(), sigma.tolist())]


def posterior_factor(lam_t: float, lam_s: float) -> float:
    """``1 - SNR(t) / SNR(s)`` for s < t, computed stably (VDM appendix A, eq. 33):
    sigma_{t|s}^2 = sigma_t^2 times this, and the variance of q(z_s | z_t, x) is
    sigma_s^2 times this."""
    return -math.expm1(lam_t - lam_s)


# ----------------------------------------------------------------------------------
# samplers
# ----------------------------------------------------------------------------------


def check_number(
    sampler: str, key: str, value: Any, low: float = 0.0, high: float = math.inf, *,
    low_closed: bool = False, high_closed: bool = False, also: str = "",
) -> float:
    """A real option between ``low`` and ``high`` (open ends unless said; bool refused),
    the message naming the sampler, the key and the allowed range (``also``: what else
    is allowed, e.g. " or None")."""
    real = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = real and (value >= low if low_closed else value > low) and (value <= high if high_closed else value < high)
    if not inside:
        if high == math.inf:
            allowed = f"{'>=' if low_closed else '>'} {low:g}"
        else:
            allowed = f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise StudioError(f"sampler {sampler!r}: {key} = {value!r} must be a number {allowed}{also}")
    return float(value)


def check_int(sampler: str, key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise StudioError(f"sampler {sampler!r}: {key} = {value!r} must be an integer >= {minimum}")
    return int(value)


def _device_dtype(net: nn.Module, x_init: Tensor | None) -> tuple[torch.device, torch.dtype]:
    if x_init is not None:
        return x_init.device, x_init.dtype
    param = next(iter(net.parameters()), None)
    if param is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return param.device, param.dtype


def check_clip(sampler: str, value: Any) -> float | None:
    """``clip_x0``: None or 0 (off), or a bound b > 0 for x0_hat in [-b, b]."""
    if value is None:
        return None
    return check_number(sampler, "clip_x0", value, low_closed=True, also=" (0 = off) or None") or None


def check_sigma_max(sampler: str, value: Any, grid: str) -> float:
    """``sigma_max``: a number > 0, on a grid spaced in log-SNR or sigma (grids.time_grid)."""
    value = check_number(sampler, "sigma_max", value, also=" or None")
    if grid == "uniform_t":
        raise StudioError(
            f"sampler {sampler!r}: sigma_max = {value!r} applies to the grids uniform_log_snr and karras, "
            "not uniform_t; set grid too"
        )
    return value


def check_history(
    sampler: str, shape: tuple[int, ...], t_start: float, x0_prev: Any, t_prev: Any, depth: int
) -> tuple[tuple[Tensor, ...], tuple[float, ...]]:
    """A branch's multistep history, as tuples, most recent first, the first ``depth``
    kept: ``x0_prev`` and ``t_prev`` are the x0_hat and t of the records before the
    branch, each one value (the record just before) or a sequence of them, both or
    neither, as many of each; the times rise above ``t_start`` (the records come before it)."""
    if x0_prev is None and t_prev is None:
        return (), ()
    if x0_prev is None or t_prev is None:
        raise StudioError(f"sampler {sampler!r}: give both x0_prev and t_prev (the previous record's x0_hat and t) or neither")
    x0s = (x0_prev,) if isinstance(x0_prev, Tensor) else tuple(x0_prev)
    ts = tuple(t_prev) if isinstance(t_prev, (list, tuple)) else (t_prev,)
    if len(x0s) != len(ts):
        raise StudioError(f"sampler {sampler!r}: {len(x0s)} x0_prev and {len(ts)} t_prev given; give one t per x0_hat")
    above = t_start
    for x0, t in zip(x0s, ts):
        if not isinstance(x0, Tensor) or tuple(x0.shape) != shape:
            got = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
            raise StudioError(f"sampler {sampler!r}: x0_prev has shape {got}, expected {shape}")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not above < t <= 1.0:
            raise StudioError(f"sampler {sampler!r}: t_prev = {t!r} must be in ({above!r}, 1] (each record before the next)")
        above = t
    return x0s[:depth], tuple(float(t) for t in ts[:depth])


class Sampler(ABC):
    """A reverse-process sampler: a plan of per-step numbers and the loop that runs it.

    Subclasses set ``name``, ``specs`` (every option, an :class:`OptionSpec`;
    ``clip_x0`` among them makes the loop honour it, ``grid`` picks the time grid) and
    write :meth:`check_options` and :meth:`plan`. The run yields one record per step.
    """

    name: str = ""
    families: tuple[str, ...] = FAMILIES
    specs: tuple[OptionSpec, ...] = ()
    adaptive = False  # True: the evaluations per step are known only after the run
    # records before a branch that its first steps read (multistep solvers: 1 for
    # DPM-Solver++(2M), 2 for (3M)); above 0, plan() takes their times as ``t_prev``
    history = 0

    # --- options --------------------------------------------------------------------
    def option_specs(self) -> dict[str, OptionSpec]:
        """Every option by name, with its annotation, default and help."""
        return {spec.name: spec for spec in self.specs}

    @property
    def defaults(self) -> dict[str, Any]:
        return {spec.name: spec.default for spec in self.specs}

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in; unknown keys and bad values raise."""
        defaults = self.defaults
        for key in options:
            if key not in defaults:
                allowed = ", ".join(defaults) or "none"
                raise StudioError(f"unknown option {key!r} for sampler {self.name!r}; allowed: {allowed}")
        opts = {**defaults, **options}
        if "clip_x0" in opts:
            opts["clip_x0"] = check_clip(self.name, opts["clip_x0"])
        if "grid" in opts and opts["grid"] not in GRIDS:
            raise StudioError(
                f"sampler {self.name!r}: grid = {opts['grid']!r} is not allowed; allowed: {', '.join(GRIDS)}"
            )
        if opts.get("sigma_max") is not None:
            opts["sigma_max"] = check_sigma_max(self.name, opts["sigma_max"], opts.get("grid", "uniform_t"))
        self.check_options(opts)
        return opts

    def check_options(self, opts: dict[str, Any]) -> None:
        """Raise StudioError naming a bad option value."""

    def check_method(self, method: Any) -> None:
        # a method's ``sampler_family`` (default its name) says whose samplers read its net
        family = getattr(method, "sampler_family", "") or getattr(method, "name", type(method).__name__)
        if family not in self.families:
            raise StudioError(
                f"sampler {self.name!r} does not support method {family!r}; supported: {', '.join(self.families)}"
            )

    # --- contract -------------------------------------------------------------------
    def num_records(self, method: Any, steps: int, **options: Any) -> int:
        """How many records a run with these arguments yields."""
        self.check_method(method)
        steps = check_int(self.name, "steps", steps)
        return self.count(steps, self.options(options))

    def count(self, steps: int, opts: dict[str, Any]) -> int:
        return steps

    def branch_steps(self, method: Any, steps: int, index: int, **options: Any) -> int:
        """The ``steps`` that, with ``t_start = record.t`` and ``x_init = record.x_t`` of
        record ``index`` of a ``steps``-step run, continues that run on the same grid
        (every grid kind keeps this: grids.py). ``num_records(method, branch_steps)``
        says how many records the branch yields."""
        total = self.num_records(method, steps, **options)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < total:
            raise StudioError(f"sampler {self.name!r}: record index {index!r} is outside 0 .. {total - 1}")
        return steps - self.grid_index(index, steps, self.options(options))

    def grid_index(self, index: int, steps: int, opts: dict[str, Any]) -> int:
        """The grid point record ``index`` starts at (one record per grid point here)."""
        return index

    def nfe(self, method: Any, steps: int, **options: Any) -> int:
        """Network evaluations a run of ``steps`` makes."""
        self.check_method(method)
        steps = check_int(self.name, "steps", steps)
        if self.adaptive:
            raise StudioError(
                f"sampler {self.name!r} is adaptive: its evaluations are known only after a run (StepRecord.nfe)"
            )
        return self.evaluations(steps, self.options(options))

    def evaluations(self, steps: int, opts: dict[str, Any]) -> int:
        return self.count(steps, opts)  # one network call per record unless told

    def steps_for_nfe(self, method: Any, nfe: int, **options: Any) -> int:
        """The largest ``steps`` whose ``nfe(...)`` is within the budget (at least 1)."""
        budget = check_int(self.name, "nfe", nfe)
        self.nfe(method, 1, **options)  # checks the method and options once
        opts = self.options(options)
        if self.evaluations(1, opts) > budget:
            return 1
        lo, hi = 1, 2  # evaluations grow with steps: double, then bisect
        while self.evaluations(hi, opts) <= budget:
            lo, hi = hi, 2 * hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.evaluations(mid, opts) <= budget else (lo, mid)
        return lo

    @abstractmethod
    def plan(self, method: Any, steps: int, t_start: float, opts: dict[str, Any]) -> list[Step]:
        """The per-step numbers of a run of ``steps`` steps from ``t_start``."""

    def __call__(
        self,
        method: Any,
        net: nn.Module,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator | None = None,
        x_init: Tensor | None = None,
        t_start: float | None = None,
        x0_prev: Tensor | Sequence[Tensor] | None = None,
        t_prev: float | Sequence[float] | None = None,
        **options: Any,
    ) -> Iterator[StepRecord]:
        """Check the arguments now, and return the generator of the run's records.

        A branch from record k of a run passes ``x_init = record.x_t``, ``t_start =
        record.t`` and, for a multistep sampler (``history`` > 0: DPM-Solver++(2M), (3M)),
        the history its steps need, ``x0_prev`` and ``t_prev`` = the ``x0_hat`` and ``t``
        of records k-1, k-2, ... (one value each, or sequences, most recent first; the
        first ``history`` are used), so it continues exactly as the unbranched run; with
        fewer it starts at a lower order; other samplers ignore them."""
        self.check_method(method)
        steps = check_int(self.name, "steps", steps)
        opts = self.options(options)
        shape = tuple(int(n) for n in shape)
        # t = 0 is the data on variance preserving schedules, sigma_min on exploding ones
        lowest = 0.0 if not method.schedule.variance_preserving else math.nextafter(0.0, 1.0)
        if t_start is None:
            t_start = 1.0
        elif not lowest <= float(t_start) <= 1.0:
            raise StudioError(
                f"sampler {self.name!r}: t_start = {t_start!r} must be in "
                + ("[0, 1]" if lowest == 0.0 else "(0, 1]")
            )
        if x_init is not None and tuple(x_init.shape) != shape:
            raise StudioError(f"sampler {self.name!r}: x_init has shape {tuple(x_init.shape)}, expected {shape}")
        past, times = (), ()
        if self.history:
            past, times = check_history(self.name, shape, float(t_start), x0_prev, t_prev, self.history)
            plan = self.plan(method, steps, float(t_start), opts, t_prev=times)
        else:
            plan = self.plan(method, steps, float(t_start), opts)
        if len(plan) != self.count(steps, opts):  # the contract every caller relies on
            raise RuntimeError(f"sampler {self.name!r} planned {len(plan)} steps, promised {self.count(steps, opts)}")
        device, dtype = _device_dtype(net, x_init)
        if generator is None:
            # never the global RNG (it would change the caller's state): a private one
            generator = torch.Generator(device=device)
            generator.seed()
        past = tuple(x0.detach().to(device=device, dtype=dtype) for x0 in past)
        return run(plan, method, net, shape, generator, x_init, device, dtype, opts.get("clip_x0"), past)


# ----------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------


def run(
    plan: list[Step],
    method: Any,
    net: nn.Module,
    shape: tuple[int, ...],
    generator: torch.Generator,
    x_init: Tensor | None,
    device: torch.device,
    dtype: torch.dtype,
    clip: float | None = None,
    past: tuple[Tensor, ...] = (),
) -> Iterator[StepRecord]:
    """Run a plan, yielding one record per step. A plain :class:`Step` is the fused
    linear step; any other step object has ``level``, ``evals`` and ``take(net, x,
    generator, clip, past) -> (x0_hat, eps_hat, x_next)`` (Heun's second call, the
    Langevin corrector's norms, an ODE solve). ``past``: the x0_hat of the steps before,
    most recent first, as many as the plan's ``E`` reach (a branch's first steps take a
    multistep solver's history from its caller). Grad mode is entered per step, never
    across a ``yield`` (a suspended ``with torch.no_grad()`` leaks into the caller)."""
    if x_init is None:
        with torch.no_grad():
            x = method.prior_sample(shape, generator=generator, device=device).to(dtype)
    else:
        x = x_init.detach()
    depth = max((len(step.E) for step in plan if type(step) is Step), default=0)
    past = tuple(past)[:depth]
    nfe = 0
    for index, step in enumerate(plan):
        with torch.no_grad():
            if type(step) is Step:
                x0, eps, x_next = take_step(step, net, x, generator, clip, past)
            else:
                x0, eps, x_next = step.take(net, x, generator, clip, past)
        past = (x0, *past)[:depth]
        nfe += step.evals
        level = step.level
        yield StepRecord(index, level.t, level.log_snr, level.sigma, x, x0, eps, x_next, nfe)
        x = x_next


def predict(step: Step, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One network call at the step's level: (out, x0_hat, eps_hat), unclipped."""
    # c_in is 1 up to rounding on variance-preserving processes: skip the multiply
    x_in = x if abs(step.c_in - 1.0) < 1e-9 else x * step.c_in
    out = net(x_in, x.new_full((x.shape[0],), step.level.log_snr))
    x0 = out if step.p == 0.0 and step.q == 1.0 else torch.add(x * step.p, out, alpha=step.q)
    eps = out if step.u == 0.0 and step.w == 1.0 else torch.add(x * step.u, out, alpha=step.w)
    return out, x0, eps


def take_step(
    step: Step,
    net: nn.Module,
    x: Tensor,
    generator: torch.Generator,
    clip: float | None = None,
    past: tuple[Tensor, ...] = (),
) -> tuple[Tensor, Tensor, Tensor]:
    """One network call, then x0_hat, eps_hat and x_next as fused scalar-tensor ops
    (x0_hat clamped to [-clip, clip] first when ``clip`` is given; ``past``, the
    previous steps' x0_hat, most recent first, enter with weights ``step.E``). Every
    returned tensor is new; ``x`` is never written to."""
    out, x0, eps = predict(step, net, x)
    if clip:
        x0 = x0.clamp(-clip, clip)
        mean = torch.add(x * step.A, x0, alpha=step.B)
        if step.C != 0.0:
            mean = mean.add_(eps, alpha=step.C)
    else:
        mean = torch.add(x * step.a, out, alpha=step.b)
    for weight, x0_old in zip(step.E, past):
        if weight != 0.0:
            mean = mean.add_(x0_old, alpha=weight)
    if step.c == 0.0:
        return x0, eps, mean
    # mean + c z in one op, bit for bit the same as mean + c * randn (and as cheap as randn)
    return x0, eps, torch.normal(mean, step.c, generator=generator)

"""Schedule end points chosen from the data (Song & Ermon 2020; Kingma et al. 2021).

Variance exploding (NCSN), Song & Ermon 2020, "Improved Techniques for Training
Score-Based Generative Models":

* technique 1: sigma_max as large as the largest Euclidean distance between two
  training points, so the noisiest level can carry any point to any other;
* technique 2: a geometric progression whose ratio gamma makes neighbouring levels'
  typical shells overlap, Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1)
  - 3 gamma) = 1/2 for data of dimension D (the norm of N(0, sigma^2 I) is about
  N(sigma sqrt(D), sigma^2 / 2)); L follows from sigma_max / sigma_min.

Variance preserving (DDPM, VDM), the two ends of the log-SNR:

* lambda_max: reading x back from z_0 = alpha_0 x + sigma_0 eps as z_0 / alpha_0 is off
  by N(0, e^{-lambda_max}); it lands in the wrong quantisation bin (width Delta) with
  probability below 1e-3 per dimension when e^{-lambda_max / 2} <= Delta / (2 z),
  z = Phi^{-1}(1 - 5e-4) (VDM's gamma_min = -13.3 is this bound for 8-bit data);
* lambda_min: the prior term KL(q(z_1 | x) || N(0, I)) of the bound below 1e-3 bits per
  dimension, averaged over the data.

``advise(dataset, schedule)`` returns the suggestions with their reasons and a
schedule of the same family (where its parameters can express them) built from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .errors import StudioError
from .schedules import GeometricSchedule, Schedule, make_schedule

KL_BITS_PER_DIM = 1e-3  # the prior term's budget
WRONG_BIN = 1e-3  # per-dimension probability of decoding into the wrong bin
MAX_PAIRS_POINTS = 20000  # points whose pairwise distances are all computed
MAX_PAIRS_ELEMENTS = 2e9  # N^2 D bound on that work; beyond it a random subset


@dataclass
class Suggestion:
    key: str  # a schedule parameter (sigma_max, steps, gamma_min, ...) or a quantity (lambda_max)
    value: float
    reason: str


@dataclass
class Advice:
    suggestions: list[Suggestion]
    schedule: Schedule
    notes: list[str] = field(default_factory=list)

    def value(self, key: str) -> float:
        for s in self.suggestions:
            if s.key == key:
                return s.value
        raise StudioError(f"no suggestion {key!r}; have: {', '.join(s.key for s in self.suggestions)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestions": [{"key": s.key, "value": s.value, "reason": s.reason} for s in self.suggestions],
            "schedule": self.schedule.to_dict(),
            "notes": list(self.notes),
        }


def _flat(data: Tensor) -> Tensor:
    return torch.as_tensor(data).reshape(len(data), -1).double()


def _subset(n: int, dim: int, seed: int) -> Tensor | None:
    """Indices of a random subset small enough for all-pairs work, or None for all."""
    keep = min(n, MAX_PAIRS_POINTS, int(math.sqrt(MAX_PAIRS_ELEMENTS / max(dim, 1))))
    if keep >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep]


def convex_hull_2d(points: Tensor) -> Tensor:
    """Indices of the vertices of the convex hull of (N, 2) points (Andrew's monotone
    chain); the farthest pair of a planar set is a pair of them."""
    pts = points.tolist()
    order = sorted(range(len(pts)), key=lambda i: (pts[i][0], pts[i][1]))

    def cross(o: int, a: int, b: int) -> float:
        return (pts[a][0] - pts[o][0]) * (pts[b][1] - pts[o][1]) - (pts[a][1] - pts[o][1]) * (pts[b][0] - pts[o][0])

    def chain(indices: list[int]) -> list[int]:
        out: list[int] = []
        for i in indices:
            while len(out) >= 2 and cross(out[-2], out[-1], i) <= 0:
                out.pop()
            out.append(i)
        return out[:-1]

    hull = chain(order) + chain(order[::-1])
    return torch.tensor(hull or order[:1], dtype=torch.long)


def max_pairwise_distance(data: Tensor, seed: int = 0) -> tuple[float, int]:
    """The largest Euclidean distance between two points of ``data`` (N, ...) and how
    many points it was taken over (all, or a random subset when N^2 D is too large).
    Planar points: exactly, over the vertices of their convex hull."""
    x = _flat(data)
    if x.shape[1] == 2:
        x = x[convex_hull_2d(x)]
        best = float(torch.cdist(x, x).max()) if len(x) > 1 else 0.0
        return best, len(data)
    idx = _subset(len(x), x.shape[1], seed)
    if idx is not None:
        x = x[idx]
    best = 0.0
    for start in range(0, len(x), 1024):  # 1024 rows of the distance matrix at a time
        best = max(best, float(torch.cdist(x[start : start + 1024], x).max()))
    return best, len(x)


def median_nearest_neighbour(data: Tensor, queries: int = 512, seed: int = 0) -> float:
    """Median distance from a point to its nearest other training point."""
    x = _flat(data)
    g = torch.Generator().manual_seed(seed)
    q = torch.randperm(len(x), generator=g)[: min(queries, len(x))]
    nearest = []
    for start in range(0, len(q), 256):
        rows = q[start : start + 256]
        d = torch.cdist(x[rows], x)
        d[torch.arange(len(rows)), rows] = float("inf")  # not itself
        nearest.append(d.min(1).values)
    return float(torch.cat(nearest).median())


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _normal_quantile(p: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _normal_cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def shell_overlap(gamma: float, dim: int) -> float:
    """Song & Ermon 2020, technique 2: Phi(sqrt(2D)(gamma-1) + 3 gamma) - Phi(sqrt(2D)(gamma-1) - 3 gamma)."""
    a = math.sqrt(2.0 * dim) * (gamma - 1.0)
    return _normal_cdf(a + 3.0 * gamma) - _normal_cdf(a - 3.0 * gamma)


def geometric_ratio(dim: int, overlap: float = 0.5) -> float | None:
    """The ratio gamma with shell_overlap(gamma, D) = ``overlap``; None where no ratio
    reaches it (D <= 4: the shells' 3-std intervals then reach the origin and overlap
    by more than half for every gamma)."""
    if math.sqrt(2.0 * dim) <= 3.0:
        return None
    lo, hi = 1.0, 2.0
    while shell_overlap(hi, dim) > overlap:
        hi *= 2.0
    for _ in range(200):  # the overlap falls as gamma grows (for sqrt(2D) > 3)
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if shell_overlap(mid, dim) > overlap else (lo, mid)
    return 0.5 * (lo + hi)


def quantisation_step(data: Any, kind: str, meta: dict[str, Any]) -> tuple[float, str]:
    """The data's quantisation bin in model units, and where it came from."""
    if kind == "images":
        levels = int(meta.get("levels") or 256)
        # images are in [-1, 1] in model range (core.data.base)
        return 2.0 / (levels - 1), f"{levels} levels in [-1, 1]: bin width 2/{levels - 1}"
    nn = median_nearest_neighbour(data)
    return nn, f"points are not quantised; the median distance to the nearest other point ({nn:.4g}) stands in for the bin"


def lambda_max_for(delta: float, wrong_bin: float = WRONG_BIN) -> float:
    """Largest log-SNR needed: e^{-lambda/2} = delta / (2 z), z = Phi^{-1}(1 - p/2)."""
    z = _normal_quantile(1.0 - wrong_bin / 2.0)
    return 2.0 * math.log(2.0 * z / delta)


def prior_kl_bits_per_dim(lam_min: float, mean_square: float) -> float:
    """KL(N(alpha x, sigma^2) || N(0, 1)) per dimension averaged over data with E[x^2]
    = ``mean_square``, at log-SNR ``lam_min`` (variance preserving), in bits."""
    a2 = 1.0 / (1.0 + math.exp(-lam_min))
    s2 = 1.0 - a2
    nats = 0.5 * (s2 + a2 * mean_square - 1.0 - math.log(s2))
    return nats / math.log(2.0)


def lambda_min_for(mean_square: float, bits: float = KL_BITS_PER_DIM) -> float:
    """The largest lambda_min whose prior KL stays below ``bits`` per dimension."""
    lo, hi = -40.0, 20.0  # KL rises with lambda
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if prior_kl_bits_per_dim(mid, mean_square) < bits else (lo, mid)
    return lo


# ----------------------------------------------------------------------------------
# Building the schedule
# ----------------------------------------------------------------------------------


def _solve(f, target: float, lo: float, hi: float, increasing: bool) -> float:
    """Bisection in log space for f(x) = target on [lo, hi] (f monotone)."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        m = 0.5 * (a + b)
        below = f(math.exp(m)) < target
        a, b = (m, b) if below == increasing else (a, m)
    return math.exp(0.5 * (a + b))


def _beta_family(schedule: Schedule, lam_max: float, lam_min: float) -> tuple[Schedule, list[str]]:
    """beta_start and beta_end that put lambda at step 1 and step T on the targets
    (alternating one-dimensional solves: beta_start mostly sets the first, beta_end the last)."""
    params = dict(schedule.params())
    fam = schedule.family

    def ends(b0: float, b1: float) -> tuple[float, float]:
        lam = make_schedule(fam, **{**params, "beta_start": b0, "beta_end": b1}).log_snr_steps
        return float(lam[0]), float(lam[-1])

    b0, b1 = float(params["beta_start"]), float(params["beta_end"])
    notes = []
    for _ in range(4):
        b0 = _solve(lambda b: ends(b, max(b1, b))[0], lam_max, 1e-9, 0.5, increasing=False)
        b1 = _solve(lambda b: ends(b0, b)[1], lam_min, max(b0, 1e-9), 0.999, increasing=False)
    first, last = ends(b0, b1)
    if abs(last - lam_min) > 0.05:
        notes.append(f"with steps = {schedule.steps} the {fam} betas reach lambda_T = {last:.3g} at most (target {lam_min:.3g})")
    return make_schedule(fam, **{**params, "beta_start": b0, "beta_end": b1}), notes


def _rescaled_custom(schedule: Schedule, lam_max: float, lam_min: float) -> Schedule:
    """The schedule's shape, its lambda mapped affinely onto [lam_min, lam_max], as
    custom control points (17 of them)."""
    t = torch.linspace(0.0, 1.0, 17, dtype=torch.float64)
    with torch.no_grad():
        lam = schedule.log_snr(t.to(torch.float32 if schedule.learned else torch.float64)).double()
    lam = lam.clamp(-1e6, 1e6)
    u = (lam - lam[-1]) / (lam[0] - lam[-1])  # 1 at t = 0, 0 at t = 1
    new = lam_min + u * (lam_max - lam_min)
    return make_schedule("custom", points=[[float(a), float(b)] for a, b in zip(t, new)], steps=schedule.steps)


def advise(dataset: Any, schedule: Schedule, seed: int = 0) -> Advice:
    """Suggestions for ``schedule``'s end points from ``dataset`` (a core Dataset), and a
    schedule built from them (module docstring)."""
    data = dataset.data
    dim = int(_flat(data[:1]).shape[1])
    kind = getattr(dataset, "kind", "points")
    meta = getattr(dataset, "meta", {}) or {}
    out: list[Suggestion] = []
    notes: list[str] = []
    if not schedule.variance_preserving:
        d_max, used = max_pairwise_distance(data, seed)
        over = f"all {used} points" if used == len(data) else f"a random {used} of {len(data)} points"
        out.append(Suggestion("sigma_max", d_max, f"largest distance between two training points, over {over} "
                              "(Song & Ermon 2020, technique 1)"))
        sigma_min = float(getattr(schedule, "sigma_min", 0.01))
        ratio = geometric_ratio(dim)
        if ratio is None:
            steps = schedule.steps
            notes.append(f"technique 2 does not apply in D = {dim} dimensions (every ratio keeps neighbouring "
                         f"levels' shells overlapping by more than half); steps kept at {steps}")
        else:
            steps = max(2, math.ceil(math.log(d_max / sigma_min) / math.log(ratio)) + 1)
            out.append(Suggestion("ratio", ratio, f"Phi(sqrt(2D)(g-1)+3g) - Phi(sqrt(2D)(g-1)-3g) = 0.5 for D = {dim} "
                                  "(Song & Ermon 2020, technique 2)"))
            out.append(Suggestion("steps", float(steps), f"levels from sigma_max {d_max:.4g} down to sigma_min "
                                  f"{sigma_min:g} at ratio {ratio:.4f}"))
        if not isinstance(schedule, GeometricSchedule):
            notes.append(f"schedule {schedule.family!r} is variance exploding but not geometric; the suggestion is a geometric one")
        built = GeometricSchedule(steps=steps, sigma_max=max(d_max, sigma_min * 1.01), sigma_min=sigma_min)
        return Advice(out, built, notes)

    delta, source = quantisation_step(data, kind, meta)
    lam_max = lambda_max_for(delta)
    out.append(Suggestion("lambda_max", lam_max, f"{source}; decoding z_0 / alpha_0 lands in the wrong bin with "
                          f"probability < {WRONG_BIN:g} per dimension"))
    mean_square = float((_flat(data) ** 2).mean())
    lam_min = lambda_min_for(mean_square)
    out.append(Suggestion("lambda_min", lam_min, f"prior KL(q(z_1 | x) || N(0, I)) < {KL_BITS_PER_DIM:g} bits/dim "
                          f"for this data (E[x^2] = {mean_square:.3g})"))
    if lam_min >= lam_max:
        raise StudioError(f"advisor: lambda_min {lam_min:.3g} >= lambda_max {lam_max:.3g} for this data; no schedule fits both")
    fam = schedule.family
    params = schedule.params()
    if fam in ("vdm_fixed", "vdm_learned"):
        built = make_schedule(fam, **{**params, "gamma_min": -lam_max, "gamma_max": -lam_min})
        out.append(Suggestion("gamma_min", -lam_max, "VDM's gamma(0) = -lambda_max"))
        out.append(Suggestion("gamma_max", -lam_min, "VDM's gamma(1) = -lambda_min"))
    elif schedule.discrete and "beta_start" in params and "beta_end" in params:
        built, more = _beta_family(schedule, lam_max, lam_min)
        notes += more
        out.append(Suggestion("beta_start", built.params()["beta_start"], "puts lambda at step 1 on lambda_max"))
        out.append(Suggestion("beta_end", built.params()["beta_end"], "puts lambda at step T on lambda_min"))
    else:
        built = _rescaled_custom(schedule, lam_max, lam_min)
        notes.append(f"schedule {fam!r} has no end-point parameters; the suggestion is a custom schedule of its shape")
    return Advice(out, built, notes)

"""A schedule on the log-SNR axis as plain data, for ``diffusion-studio schedule
--density --weighting --grid`` (text, JSON and PNG): the noise-level density and its
band shares, each objective's implied weight and effective weight, a sampler grid's
ticks (studio.core.noise_levels, studio.core.weighting)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..core.errors import UnknownNameError
from ..core.noise_levels import band_shares, grid_ticks, log_snr_density, plot_range
from ..core.schedules import Schedule
from ..core.weighting import effective_weight, get_weighting, normalised, weightings


def default_weightings(schedule: Schedule) -> list[str]:
    """The objectives that train on this kind of schedule (plugins' included)."""
    if schedule.variance_preserving:
        names = ["eps_mse", "x0_mse", "v_mse", "vdm_elbo"]
    else:
        names = ["ncsn_dsm", "x0_mse"]
    return names + [n for n in weightings() if n not in names and n not in ("eps_mse", "x0_mse", "v_mse", "vdm_elbo", "ncsn_dsm")]


def parse_weightings(spec: str | None, schedule: Schedule) -> list[str]:
    """``all`` (or None) -> :func:`default_weightings`; else comma-separated names."""
    if spec in (None, "", "all"):
        return default_weightings(schedule)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    table = weightings()
    for name in names:
        if name not in table:
            raise UnknownNameError(f"--weighting {name!r}: unknown; allowed: all, {', '.join(table)}")
    return names


def _finite_list(a: np.ndarray) -> list[float | None]:
    """JSON has no inf or NaN: those become null."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, dtype=np.float64).tolist()]


def schedule_figures(schedule: Schedule, density: bool = False, weighting_names: Sequence[str] = (),
                     grid: str | None = None, grid_steps: int = 50, rho: float = 7.0, n: int = 400) -> dict[str, Any]:
    """The figures as JSON-ready data (arrays as lists, inf as null)."""
    out: dict[str, Any] = {}
    lo, hi = plot_range(schedule)
    lam = np.linspace(lo, hi, n)
    if density:
        d = log_snr_density(schedule, n=n)
        out["density"] = {
            "kind": d.kind,
            "log_snr": _finite_list(d.log_snr),
            "density": _finite_list(d.density),
            "band_shares": band_shares(schedule),
        }
        if d.edges is not None:
            out["density"]["edges"] = _finite_list(d.edges)
    if weighting_names:
        table = {}
        for name in weighting_names:
            w = get_weighting(name)
            eff = effective_weight(schedule, w, lam)
            table[name] = {
                "label": w.label,
                "source": w.source,
                "log_snr": _finite_list(lam),
                "weight": _finite_list(w.weight(lam, schedule)),
                "effective": _finite_list(eff),
                "effective_normalised": _finite_list(normalised(eff, lam)),
                "own_density": w.density is not None,
            }
        out["weighting"] = table
    if grid:
        ticks = grid_ticks(schedule, grid_steps, grid=grid, rho=rho)
        out["grid"] = {
            "grid": grid,
            "steps": grid_steps,
            "t": _finite_list(ticks.t),
            "log_snr": _finite_list(ticks.log_snr),
            "largest_jump": ticks.largest_jump,
            "largest_jump_at": ticks.largest_jump_at,
        }
    return out


def summary_lines(figures: dict[str, Any]) -> list[str]:
    lines = []
    if "density" in figures:
        d = figures["density"]
        shares = ", ".join(f"{k}: {100 * v:.1f}%" for k, v in d["band_shares"].items())
        lines.append(f"noise-level density p(lambda) ({d['kind']}); share of training {shares}")
    for name, w in figures.get("weighting", {}).items():
        lam = np.array([np.nan if v is None else v for v in w["log_snr"]])
        eff = np.array([0.0 if v is None else v for v in w["effective_normalised"]])
        peak = float(lam[int(np.argmax(eff))]) if len(eff) and eff.max() > 0 else float("nan")
        lines.append(f"weighting {name} ({w['label']}, {w['source']}): effective weight p*w peaks at lambda = {peak:.3g}")
    if "grid" in figures:
        g = figures["grid"]
        lams = [v for v in g["log_snr"] if v is not None]
        lines.append(f"grid {g['grid']}, {g['steps']} steps: lambda from {lams[0]:.3g} to {lams[-1]:.3g}; "
                     f"largest jump {g['largest_jump']:.3g} at step {g['largest_jump_at']}")
    return lines


def figure_panels(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels for ``engine.plots.save_figure`` against the log-SNR."""
    arr = lambda v: np.array([np.nan if x is None else x for x in v], dtype=np.float64)
    panels = []
    ticks = arr(figures["grid"]["log_snr"]) if "grid" in figures else ()
    if "density" in figures:
        d = figures["density"]
        x, y = arr(d["log_snr"]), arr(d["density"])
        if d["kind"] == "histogram":  # steps: each bin's density across its width
            e = arr(d["edges"])
            x, y = np.repeat(e, 2)[1:-1], np.repeat(y, 2)
        panels.append({"title": "p(lambda), noise levels training visits", "curves": [("p", x, y)], "ticks": ticks,
                       "from_zero": True})
    if "weighting" in figures:
        ws = figures["weighting"]
        panels.append({"title": "implied weight w(lambda), normalised", "log_y": True,
                       "curves": [(n, arr(w["log_snr"]), normalised(arr(w["weight"]), arr(w["log_snr"]))) for n, w in ws.items()],
                       "ticks": ticks})
        panels.append({"title": "effective weight p*w, normalised", "log_y": True,
                       "curves": [(n, arr(w["log_snr"]), arr(w["effective_normalised"])) for n, w in ws.items()], "ticks": ticks})
    if "grid" in figures and "density" not in figures and "weighting" not in figures:
        g = figures["grid"]
        panels.append({"title": f"{g['grid']} grid: lambda per step", "curves": [("lambda", np.arange(len(ticks)), ticks)]})
    return panels

"""The sampler comparison job: sample quality against the number of network function
evaluations (NFE), for several samplers on one checkpoint (DDIM's Table 1, EDM's and
DPM-Solver's NFE figures, for the user's own model).

Every cell of the table (sampler x NFE budget) starts from the same prior draw and the
same seed, so curves differ only by the sampler. The NFE a cell used is counted by
wrapping the network (a Heun step's two calls count two), not computed. Scores:

* points (and small images): sliced Wasserstein distance and MMD to the run's held-out
  split, in the model's normalised scale (as ``engine.evaluate``);
* digits: the Frechet distance of the studio's digits classifier features and the
  fraction of samples it classifies with confidence > 0.9 (``engine.digits_metric``).

``compare_samplers`` checks its arguments (raising ``StudioError``) and loads the model
before it returns the generator of events: ``Started``, one ``CompareRow`` per cell as
it finishes, ``Finished`` with every row (``result["cancelled"]`` when stopped).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

import studio

from ..core.errors import ConfigError, StudioError
from ..core.metrics import frechet_distance, mmd_rbf, sliced_wasserstein
from ..core.registry import SAMPLERS
from .config import sampler_options, with_data_range
from .control import Cancelled, JobControl
from .evaluate import MAX_DIM_FOR_DISTANCES, MMD_POINTS, held_out_data
from .events import CompareRow, Event, Finished, Started
from .runs import RunDir
from .trainer import pick_device
from .trajectory import TrajectoryWriter

DEFAULT_BUDGETS = (5, 10, 20, 50, 100, 1000)
PREVIEW_IMAGES = 36  # samples a row carries for a hover preview
PREVIEW_POINTS = 1000
TRAJECTORY_IMAGES = 64  # images kept in a cell's trajectory file (points keep all)
COLUMNS = (
    "sampler", "nfe_budget", "steps", "nfe", "n", "seed", "wall_s",
    "sliced_wasserstein", "mmd", "frechet_digits", "confident",
    "options", "checkpoint", "checkpoint_sha256", "studio_version", "run",
)


class CountingNet(nn.Module):
    """The network, counting its calls: the NFE a sampler actually made."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x, log_snr)


ADAPTIVE_STEPS = 2  # an adaptive solver's grid: one interval solved to tolerance, then onto the data


def cell_steps(sampler: Any, method: Any, budget: int, options: dict[str, Any]) -> int:
    """The steps of a cell: the most whose NFE fits ``budget`` (``Sampler.steps_for_nfe``:
    Heun's two calls a step, PC's corrector calls and Langevin's levels x steps count).
    An adaptive solver's NFE follows from its tolerances, not its steps: it gets one cell
    on a one-interval grid, whatever the budgets (``nfe_budget`` None in its row)."""
    if getattr(sampler, "adaptive", False):
        return ADAPTIVE_STEPS
    return int(sampler.steps_for_nfe(method, budget, **options))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{key} = {value!r}: expected an integer >= {minimum}")
    return int(value)


def uses_digits_metric(info: Any) -> bool:
    """Images of the ``digits`` source: the classifier was trained on exactly those."""
    return info.kind == "images" and info.meta.get("source") == "digits"


class Scorer:
    """Quality figures of samples against the run's held-out data, with the reference's
    share (its classifier features) computed once for every cell."""

    def __init__(self, info: Any, reference: torch.Tensor, seed: int):
        self.info, self.seed = info, seed
        self.reference = reference.reshape(len(reference), -1)
        self.digits = uses_digits_metric(info)
        if self.digits:
            from .digits_metric import features_and_probs

            self.ref_features = features_and_probs(info.to_raw(reference))[0]

    def __call__(self, samples: torch.Tensor) -> dict[str, float]:
        scores: dict[str, float] = {}
        flat = samples.reshape(len(samples), -1)
        if not torch.isfinite(flat).all():
            return {"sliced_wasserstein": float("nan"), "mmd": float("nan")}
        if self.info.dim <= MAX_DIM_FOR_DISTANCES:
            scores["sliced_wasserstein"] = sliced_wasserstein(flat, self.reference, seed=self.seed)
            scores["mmd"] = mmd_rbf(flat[:MMD_POINTS], self.reference[:MMD_POINTS])
        if self.digits:
            from .digits_metric import confident_fraction, features_and_probs

            feats, probs = features_and_probs(self.info.to_raw(samples))
            scores["frechet_digits"] = frechet_distance(torch.as_tensor(feats), torch.as_tensor(self.ref_features))
            scores["confident"] = confident_fraction(probs)
        return scores


def compare_samplers(
    run_dir: str | Path,
    samplers: Iterable[str],
    nfe_budgets: Iterable[int] = DEFAULT_BUDGETS,
    n: int | None = None,
    seed: int = 0,
    checkpoint: str = "ema",
    checkpoint_path: str | Path | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    trajectory_dir: str | Path | None = None,
    control: JobControl | None = None,
    device: str = "cpu",
) -> Iterator[Event]:
    """Score every (sampler, NFE budget) cell on the run's checkpoint (module docstring).

    ``n`` samples per cell (default 1000 points or 256 images), ``options`` per sampler
    name (default: the config's ``[sample]`` options for its sampler, none for others;
    images clip x0_hat to [-1, 1]), ``trajectory_dir``: where each cell writes its
    trajectory HDF5 (``compare_<sampler>_nfe<budget>.h5``), for the viewer.
    """
    control = control or JobControl()
    run = RunDir(run_dir).require()
    cfg = run.config
    ckpt = run.resolve_checkpoint(checkpoint_path if checkpoint_path is not None else checkpoint)
    method, net, info = run.load_model(checkpoint, path=ckpt)
    names = [str(s) for s in samplers]
    if not names:
        raise ConfigError("samplers: name at least one sampler; registered: " + ", ".join(SAMPLERS.names()))
    if len(set(names)) != len(names):
        raise ConfigError(f"samplers: {', '.join(names)} names one sampler twice")
    budgets = [_int("nfe", b, 1) for b in nfe_budgets]
    if not budgets:
        raise ConfigError("nfe: give at least one budget, e.g. 5,10,20,50")
    budgets = sorted(set(budgets))
    n = _int("n", n if n is not None else (1000 if info.kind == "points" else 256), 2)
    seed = _int("seed", seed, 0)
    options = options or {}
    unknown = set(options) - set(names)
    if unknown:
        raise ConfigError(f"options given for {', '.join(sorted(unknown))}, which is not among the samplers {', '.join(names)}")
    plans = []  # (name, sampler, options, budget, steps)
    for name in names:
        smp = SAMPLERS.get(name)
        smp.check_method(method)
        opts = dict(options.get(name, sampler_options(cfg) if name == cfg.sample.get("sampler") else {}))
        opts = with_data_range(name, opts, info.kind)
        smp.options(opts)  # bad option values raise now, naming the sampler
        if getattr(smp, "adaptive", False):
            plans.append((name, smp, opts, None, cell_steps(smp, method, budgets[-1], opts)))
            continue
        for budget in budgets:
            plans.append((name, smp, opts, budget, cell_steps(smp, method, budget, opts)))
    reference = held_out_data(cfg)
    if trajectory_dir is not None:
        Path(trajectory_dir).mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    method.to(dev), net.to(dev)
    settings = {
        "run": str(run.path), "n": n, "seed": seed, "checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt),
        "studio_version": studio.__version__,
    }
    return _run(run, cfg, method, CountingNet(net), info, plans, reference, settings, trajectory_dir, control, dev)


def _run(run, cfg, method, net, info, plans, reference, settings, trajectory_dir, control, dev) -> Iterator[Event]:
    n, seed = settings["n"], settings["seed"]
    shape = (n, *info.shape)
    # the same prior draw for every cell: the curves differ only by the sampler
    prior = method.prior_sample(shape, generator=torch.Generator(device=dev).manual_seed(seed), device=dev)
    scorer = Scorer(info, reference, seed)
    yield Started("compare", str(run.path), len(plans), cfg.to_dict())
    rows: list[dict[str, Any]] = []
    try:
        for cell, (name, smp, opts, budget, steps) in enumerate(plans):
            control.checkpoint()
            row, samples, path = _cell(run, cfg, method, net, info, smp, name, opts, steps, prior, seed, trajectory_dir, budget, control)
            row = {"sampler": name, "nfe_budget": budget, **row, **scorer(samples), **settings, "options": json.dumps(opts, sort_keys=True)}
            rows.append(row)
            raw = info.to_raw(samples)
            images = info.to_uint8(samples[:PREVIEW_IMAGES]) if info.kind == "images" else None
            points = raw[:PREVIEW_POINTS].astype(np.float32) if info.kind == "points" else None
            yield CompareRow(cell, len(plans), row, images, points, path)
    except Cancelled:
        yield Finished(len(rows), str(run.path), {"rows": rows, "cancelled": True})
        return
    yield Finished(len(rows), str(run.path), {"rows": rows, "cancelled": False})


def _cell(run, cfg, method, net, info, smp, name, opts, steps, prior, seed, trajectory_dir, budget, control):
    """One cell: (row figures, samples in model range, trajectory path or None)."""
    generator = torch.Generator(device=prior.device).manual_seed(seed)
    records = smp(method, net, tuple(prior.shape), steps, generator=generator, x_init=prior, **opts)
    writer, path = None, None
    keep = len(prior) if info.kind == "points" else min(len(prior), TRAJECTORY_IMAGES)
    if trajectory_dir is not None:
        path = str(Path(trajectory_dir) / f"compare_{name}_nfe{budget if budget is not None else 'adaptive'}.h5")
        attrs = {
            "config": json.dumps(cfg.to_dict()), "data_kind": info.kind, "run_dir": str(run.path), "scale": "raw",
            "sampler": name, "steps": steps, "n": keep, "seed": seed, "checkpoint": "compare", "options": opts,
        }
        writer = TrajectoryWriter(path, smp.num_records(method, steps, **opts), (keep, *info.shape), attrs)
    net.calls, wall, last = 0, 0.0, None
    try:
        while True:
            control.checkpoint()
            start = time.perf_counter()  # only the sampler's own time: not the file, not the pauses
            rec = next(records, None)
            wall += time.perf_counter() - start
            if rec is None:
                break
            if writer is not None:
                writer.append(
                    rec.index, rec.t, rec.log_snr, rec.sigma, info.to_raw(rec.x_t[:keep]), info.to_raw(rec.x0_hat[:keep]),
                    rec.eps_hat[:keep].float().cpu().numpy(),
                )
            last = rec
        if writer is not None:
            writer.finish(info.to_raw(last.x_next[:keep]))
    finally:
        records.close()
        if writer is not None:
            writer.close()
    return {"steps": steps, "nfe": net.calls, "wall_s": wall}, last.x_next.cpu(), path


# ----------------------------------------------------------------------------------
# the table: text, CSV and a figure (the CLI and the app share them)
# ----------------------------------------------------------------------------------

SCORES = ("sliced_wasserstein", "mmd", "frechet_digits", "confident")
SHORT = {"sliced_wasserstein": "swd", "mmd": "mmd", "frechet_digits": "frechet", "confident": "conf>0.9"}


def score_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The quality figures these rows carry (points: SWD, MMD; digits also Frechet, confident)."""
    return [k for k in SCORES if any(k in r for r in rows)]


def format_row(row: dict[str, Any], scores: list[str]) -> str:
    budget = "adapt" if row["nfe_budget"] is None else row["nfe_budget"]
    cells = [f"{row['sampler']:<14}", f"{budget:>6}", f"{row['steps']:>6}", f"{row['nfe']:>6}", f"{row['wall_s']:>8.3f}"]
    cells += [f"{row.get(k, float('nan')):>10.4g}" for k in scores]
    return " ".join(cells)


def format_header(scores: list[str]) -> str:
    return " ".join([f"{'sampler':<14}", f"{'budget':>6}", f"{'steps':>6}", f"{'nfe':>6}", f"{'wall_s':>8}"] + [f"{SHORT[k]:>10}" for k in scores])


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Every column of ``COLUMNS`` (empty where a row lacks a figure), by temp + rename."""
    import csv
    import io

    from .atomic import write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    write_text(Path(path), buf.getvalue())
    return Path(path)


def curves(rows: list[dict[str, Any]], score: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(sampler, counted NFE, figure) per sampler, in NFE order."""
    out = []
    for name in dict.fromkeys(r["sampler"] for r in rows):
        mine = sorted((r["nfe"], r.get(score, float("nan"))) for r in rows if r["sampler"] == name)
        out.append((name, np.array([m[0] for m in mine], dtype=np.float64), np.array([m[1] for m in mine], dtype=np.float64)))
    return out


def save_plot(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """A PNG with one panel per quality figure against NFE (log x), one curve per sampler."""
    from .plots import save_figure

    panels = []
    for score in score_columns(rows):
        lines = [(name, np.log10(x), y) for name, x, y in curves(rows, score)]
        ticks = sorted({float(np.log10(r["nfe"])) for r in rows})
        panels.append({"title": f"{score} against NFE", "curves": lines, "log_y": score in ("sliced_wasserstein", "frechet_digits"),
                       "ticks": ticks, "log_x": True})
    return save_figure(path, panels, title=title, cols=min(2, max(1, len(panels))))

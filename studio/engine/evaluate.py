"""Quality figures of a run: sliced Wasserstein distance and MMD of samples to held-out
data (low-dimensional data), bits/dim from the family's likelihood bound (DDPM's L_vlb,
VDM's ELBO) on held-out data, and sample statistics. With ``likelihood="ode"`` also the
exact log-likelihood of the probability-flow ODE (core.likelihood) on the same held-out
data, for every family (``ode_*`` figures), and for 8 gaussians the data's true NLL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..core.data.toy import log_density_8gaussians
from ..core.errors import DataError, StudioError
from ..core.likelihood import ode_log_likelihood, uniform_dequantize
from ..core.metrics import mmd_rbf, sliced_wasserstein
from .config import load_data
from .events import Event, Finished, Started
from .run_index import save_evaluation
from .runs import RunDir
from .sampling import sample_job

MAX_DIM_FOR_DISTANCES = 1024  # above this, SW / MMD on raw pixels say little
MMD_POINTS = 2000  # MMD costs N^2


def load_reference(path: str | Path) -> np.ndarray:
    """Reference samples from an .npz (key ``samples``, else its only array) or .npy, raw scale."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"reference file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            if isinstance(f, np.ndarray):
                return f.astype(np.float32)
            keys = list(f.keys())
            key = "samples" if "samples" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(f"reference file {path} holds {', '.join(keys)}; name one 'samples'")
            return f[key].astype(np.float32)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read reference file {path}: {type(exc).__name__}: {exc}") from None


def held_out_data(cfg: Any) -> torch.Tensor:
    """The run's held-out split (model range), the reference for its quality figures:
    the split training left out (``[data] held_out``, seeded by ``[train] seed``), or
    every item when nothing was held out."""
    return held_out_split(cfg).data


def held_out_split(cfg: Any) -> Any:
    """:func:`held_out_data` as a Dataset (its ``to_raw`` gives the data's own scale)."""
    dataset = load_data(cfg)
    held = cfg.data.get("held_out", 0.1)
    return dataset.split(held, seed=cfg.train.get("seed", 0))[1] if held > 0 else dataset


def evaluate(
    run_dir: str | Path,
    reference: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    nll_samples: int = 512,
    checkpoint: str = "ema",
    likelihood: str | None = None,
) -> dict[str, Any]:
    """A dict of figures (see the module docstring); every distance is computed in the
    model's normalised scale, so figures of different data sets are comparable.
    ``likelihood``: None, or "ode" for the probability-flow ODE's exact likelihood."""
    if likelihood not in (None, "ode"):
        raise StudioError(f"likelihood = {likelihood!r} is not allowed; allowed: ode")
    run = RunDir(run_dir).require()
    cfg = run.config
    info = run.data_info()
    if reference is not None:
        ref = info.from_raw(load_reference(reference))
        if tuple(ref.shape[1:]) != info.shape:
            raise DataError(f"reference {reference} has samples of shape {tuple(ref.shape[1:])}, the run's data {info.shape}")
    else:
        ref = held_out_data(cfg)
    n = int(n or (max(2000, min(len(ref), 5000)) if info.kind == "points" else min(len(ref), 512)))
    figures: dict[str, Any] = {"run": str(run.path), "n_samples": n, "n_reference": len(ref), "kind": info.kind}
    result = None
    for event in sample_job(run.path, sampler=sampler, steps=steps, n=n, seed=seed, records=False, checkpoint=checkpoint):
        if isinstance(event, Finished):
            result = event.result
    samples = info.from_raw(result["samples"])
    figures.update(sampler=result["sampler"], steps=result["steps"])
    g = torch.Generator().manual_seed(seed)
    if info.dim <= MAX_DIM_FOR_DISTANCES:
        a, b = samples.reshape(len(samples), -1), ref.reshape(len(ref), -1)
        figures["sliced_wasserstein"] = sliced_wasserstein(a, b, seed=seed)
        figures["mmd"] = mmd_rbf(a[:MMD_POINTS], b[:MMD_POINTS])
        prior = run.load_model(checkpoint)[0].prior_sample((len(b), *info.shape), generator=g)
        figures["sliced_wasserstein_prior"] = sliced_wasserstein(prior.reshape(len(b), -1), b, seed=seed)
    raw_s, raw_r = info.to_raw(samples), info.to_raw(ref)
    figures["sample_mean"], figures["sample_std"] = float(raw_s.mean()), float(raw_s.std())
    figures["reference_mean"], figures["reference_std"] = float(raw_r.mean()), float(raw_r.std())
    figures["sample_min"], figures["sample_max"] = float(raw_s.min()), float(raw_s.max())
    figures.update(bits_per_dim(run, ref[:nll_samples], checkpoint, g, info))
    if likelihood == "ode":
        figures.update(ode_bits_per_dim(run, ref[:nll_samples], checkpoint, g, info))
        if cfg.data.get("name") == "8gaussians" and reference is None:
            true_nll = -float(log_density_8gaussians(info.to_raw(ref[:nll_samples])).mean())
            figures["true_bits_per_dim_raw"] = true_nll / (info.dim * math.log(2))
    save_evaluation(run.path, figures)  # RUN/evaluation.json: the runs table shows the last figures
    return figures


def bits_per_dim(run: RunDir, x: torch.Tensor, checkpoint: str, generator: torch.Generator, info) -> dict[str, float]:
    """Negative ELBO in bits/dim on ``x`` (model range) and in the data's raw scale;
    for images also on the 8-bit scale (raw [0, 1] density + log2 256, the usual
    dequantised convention). Empty for a family without a bound (NCSN)."""
    method, net, _ = run.load_model(checkpoint)
    totals = []
    try:
        for chunk in torch.split(x, 64):
            totals.append(method.nll_bound(net, chunk, generator=generator)["total"])
    except StudioError:
        return {}
    nats = float(torch.cat(totals).mean())
    dim = info.dim
    out = {"bits_per_dim": nats / (dim * math.log(2)), "bits_per_dim_raw": (nats + info.log_scale_sum()) / (dim * math.log(2))}
    if info.kind == "images":
        out["bits_per_dim_8bit"] = out["bits_per_dim_raw"] + 8.0
        # on the data's own grid of levels (meta "levels": 256 for 8-bit, 65536 for 16-bit
        # sources, 17 for digits): raw [0, 1] density + log2(levels), the dequantised convention
        levels = int(info.meta.get("levels", 256))
        out["levels"] = levels
        out["bits_per_dim_discrete"] = out["bits_per_dim_raw"] + math.log2(levels)
    return out


def ode_bits_per_dim(run: RunDir, x: torch.Tensor, checkpoint: str, generator: torch.Generator, info) -> dict[str, float]:
    """The probability-flow ODE's NLL of ``x`` (model range) in bits/dim, model and raw
    scale; images are uniformly dequantised on their levels first (meta ``levels``, 256
    for 8-bit) and also get bits/dim on those levels (raw [0, 1] density + log2 levels)."""
    method, net, _ = run.load_model(checkpoint)
    levels = int(info.meta.get("levels", 256))
    if info.kind == "images":
        raw = torch.as_tensor(info.to_raw(x))
        x = info.from_raw(uniform_dequantize(raw, levels, generator))
    log_p, nfe = [], 0
    for chunk in torch.split(x, 256):
        res = ode_log_likelihood(method, net, chunk, generator=generator)
        log_p.append(res.log_p)
        nfe += res.nfe
    nats = -float(torch.cat(log_p).mean())
    dim = info.dim
    out = {
        "ode_bits_per_dim": nats / (dim * math.log(2)),
        "ode_bits_per_dim_raw": (nats + info.log_scale_sum()) / (dim * math.log(2)),
        "ode_nfe": nfe,
    }
    if info.kind == "images":
        out["ode_bits_per_dim_discrete"] = out["ode_bits_per_dim_raw"] + math.log2(levels)
    return out


def evaluate_job(run_dir: str | Path, **options: Any) -> Iterator[Event]:
    yield Started("evaluate", str(run_dir), 1, {})
    yield Finished(1, str(run_dir), evaluate(run_dir, **options))

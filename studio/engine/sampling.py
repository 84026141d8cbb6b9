"""The sampling job: run a sampler on a run's model, stream every step as an event and,
when asked, into a trajectory HDF5 (engine.trajectory), so that a long reverse process
never sits in memory whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..core.errors import ConfigError
from ..core.registry import SAMPLERS
from .config import sampler_options, with_data_range
from .control import Cancelled, JobControl
from .events import Event, Finished, SampleStep, Started
from .runs import RunDir
from .trainer import pick_device
from .trajectory import TrajectoryWriter


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{key} = {value!r}: expected an integer >= 1")
    return int(value)


def sample_job(
    run_dir: str | Path,
    sampler: str | None = None,
    steps: int | None = None,
    n: int | None = None,
    seed: int = 0,
    checkpoint: str = "ema",
    trajectory: str | Path | None = None,
    control: JobControl | None = None,
    t_start: float | None = None,
    x_init: Any = None,
    options: dict[str, Any] | None = None,
    records: bool = True,
    device: str = "cpu",
    checkpoint_path: str | Path | None = None,
    x0_prev: Any = None,
    t_prev: float | None = None,
) -> Iterator[Event]:
    """Sample ``n`` states from the run's model (EMA weights unless ``checkpoint="net"``).

    ``sampler``, ``steps``, ``n`` default to the run's ``[sample]`` section; ``options``
    are the sampler's options (default: those in the config when the sampler is the
    config's). ``x_init`` (raw data scale, e.g. a ``SampleStep.x_t``) with ``t_start``
    branches a new run from a state; ``x0_prev`` (raw scale) and ``t_prev``, the previous
    steps' ``x0_hat`` and ``t`` (one each, or sequences, most recent first), are a multistep
    sampler's history (``dpmpp_2m`` with one, ``dpmpp_3m_sde`` with two: with them the
    branch continues exactly as the run it branches from). ``records=False`` skips the per-step events (the
    CLI); the trajectory file gets every step either way. Bad input (a run, sampler,
    option or count) raises a ``StudioError`` here, at the call, before anything is
    written; the returned generator writes the trajectory.
    """
    control = control or JobControl()
    run = RunDir(run_dir).require()
    cfg = run.config
    method, net, info = run.load_model(checkpoint, path=checkpoint_path)
    name = sampler or cfg.sample.get("sampler", "ancestral")
    smp = SAMPLERS.get(name)
    if options is None:
        options = sampler_options(cfg) if name == cfg.sample.get("sampler") else {}
    options = with_data_range(name, options, info.kind)
    steps = _count("steps", steps if steps is not None else cfg.sample.get("steps", 1000))
    if x_init is not None:
        x_init = info.from_raw(np.asarray(x_init))
        n = len(x_init)
    history = None if x0_prev is None else [info.from_raw(np.asarray(x)) for x in as_history(x0_prev)]
    n = _count("n", n if n is not None else cfg.sample.get("n", 64))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed = {seed!r}: expected an integer >= 0")
    dev = pick_device(device)
    method.to(dev), net.to(dev)
    total = smp.num_records(method, steps, **options)
    generator = torch.Generator(device=dev).manual_seed(int(seed))
    shape = (n, *info.shape)
    records_iter = smp(
        method, net, shape, steps, generator=generator,
        x_init=None if x_init is None else x_init.to(dev), t_start=t_start,
        x0_prev=None if history is None else [x.to(dev) for x in history], t_prev=t_prev, **options,
    )  # checks the options and the branch start now (Sampler.__call__ validates eagerly)
    settings = {"sampler": name, "steps": steps, "n": n, "seed": int(seed), "checkpoint": checkpoint, "options": options}
    return _run_sampler(run, cfg, info, records_iter, total, shape, settings, control, trajectory, records)


def as_history(x0_prev: Any) -> list[Any]:
    """One previous x0_hat (an array or tensor of the state's shape) or a sequence of them."""
    if isinstance(x0_prev, (list, tuple)):
        return list(x0_prev)
    return [x0_prev]


def _run_sampler(run, cfg, info, records_iter, total, shape, settings, control, trajectory, records) -> Iterator[Event]:
    writer = None
    if trajectory is not None:
        attrs = {"config": json.dumps(cfg.to_dict()), "data_kind": info.kind, "run_dir": str(run.path), "scale": "raw", **settings}
        writer = TrajectoryWriter(trajectory, total, shape, attrs)

    yield Started("sample", str(run.path), total, cfg.to_dict())
    last = None
    try:
        for rec in records_iter:
            control.checkpoint()
            x_t, x0 = info.to_raw(rec.x_t).copy(), info.to_raw(rec.x0_hat).copy()
            eps = rec.eps_hat.float().cpu().numpy().copy()
            if writer is not None:
                writer.append(rec.index, rec.t, rec.log_snr, rec.sigma, x_t, x0, eps)
            if records:
                yield SampleStep(rec.index, total, rec.t, rec.log_snr, rec.sigma, x_t, x0, eps)
            last = rec
        samples = info.to_raw(last.x_next)
        if writer is not None:
            writer.finish(samples)
    except Cancelled:
        records_iter.close()
        yield Finished(last.index + 1 if last else 0, str(run.path), {"cancelled": True, **settings})
        return
    finally:
        if writer is not None:
            writer.close()
    result = {"samples": samples, "kind": info.kind, "trajectory": str(trajectory) if trajectory else None, **settings}
    if info.kind == "images":
        result["images"] = info.to_uint8(last.x_next)
    yield Finished(total, str(run.path), result)

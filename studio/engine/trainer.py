"""The training job: a generator of events (docs/INTERFACES.md, engine).

One step is: next batch, loss, backward, gradient norm, one host read of the loss and
the norm (the finiteness check: the norm is non-finite whenever a gradient is), clipping
only when the norm is over the bound, AdamW, and every ``train.ema_every`` steps the EMA.
Everything else is kept off the step's path so that the trainer runs at the speed of a
bare hand-written loop (bench/bench_trainer.py): per-sample noise levels and loss terms
stay on the device and are read back, written and reported once every
``train.log_every`` steps, memory figures at most once a second; checkpoints and
previews come every ``checkpoint_every`` / ``preview_every`` steps.

Reproducibility: the net's initial weights, the data order (a permutation per epoch
drawn from ``(seed, epoch)``), the noise of the loss (a generator seeded from
``(seed, rank)``) and torch's global RNG (dropout) all follow ``train.seed``; a
checkpoint stores the generator and global RNG states and the data position, so a run
resumed from one continues exactly as if it had never stopped.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..core.ema import EMA
from ..core.errors import ConfigError, StudioError
from ..core.registry import SAMPLERS
from ..core.seeding import get_rng_state, seed_everything, set_rng_state
from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Config, build_model, load_config, load_data, parse_config, resolve, sampler_options, with_data_range
from .control import Cancelled, JobControl
from .events import SCHEDULE_TIMES, CheckpointSaved, Event, Failed, Finished, Log, Preview, Progress, Started
from .runs import MetricsWriter, RunDir, RunError, checkpoint_name, truncate_metrics

LEVELS_PER_PROGRESS = 4096  # cap on the per-sample (log-SNR, loss) pairs one Progress carries
LEVELS_PER_ROW = 64  # the pairs kept in metrics.jsonl per flush (loss by noise level for a follower)


@functools.lru_cache(maxsize=None)
def warm_up() -> None:
    """Construct and step an AdamW once: the first one imports ~830 modules (0.8 s,
    PITFALLS.md). The app calls this at start-up, before any job runs on a worker."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    p.grad = torch.zeros(1)
    opt.step()


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[train] device = 'cuda' but no CUDA device is available; use 'cpu' or 'auto'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


class LearnedScheduleMonitor:
    """A learned schedule's log-SNR curve for Progress events, at most every ``interval``
    seconds (VDM's schedule trains with the net; the monitor draws it as it moves)."""

    def __init__(self, schedule: nn.Module, interval: float = 1.0):
        self.schedule, self.interval = schedule, interval
        self._at = -math.inf
        self._t = torch.as_tensor(SCHEDULE_TIMES, dtype=torch.float32)

    def read(self) -> np.ndarray | None:
        now = time.monotonic()
        if not self.schedule.learned or now - self._at < self.interval:
            return None
        self._at = now
        with torch.no_grad():
            t = self._t.to(next(iter(self.schedule.parameters())).device)
            return self.schedule.log_snr(t).double().cpu().numpy().copy()


class MemoryMonitor:
    """Memory figures for Progress events, read at most every ``interval`` seconds (a
    psutil reading costs ~0.1-0.5 ms: too much for every log interval of a fast run)."""

    def __init__(self, device: torch.device, interval: float = 1.0):
        self.device, self.interval = device, interval
        self._at, self._figures = -math.inf, {}

    def read(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._at >= self.interval:
            self._at, self._figures = now, memory_figures(self.device)
        return dict(self._figures)


@functools.lru_cache(maxsize=1)
def _process():
    import psutil

    return psutil.Process()


def memory_figures(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        out: dict[str, Any] = {
            "kind": "cuda",
            "allocated": int(torch.cuda.memory_allocated(device)),
            "reserved": int(torch.cuda.memory_reserved(device)),
            "peak": int(torch.cuda.max_memory_allocated(device)),
            "total": int(torch.cuda.get_device_properties(device).total_memory),
        }
        try:
            out["utilization"] = float(torch.cuda.utilization(device))
        except Exception:  # needs pynvml; the figure is optional
            pass
        return out
    import psutil

    proc = _process()
    vm = psutil.virtual_memory()
    return {"kind": "cpu", "rss": int(proc.memory_info().rss), "ram_percent": float(vm.percent), "cpu_percent": float(psutil.cpu_percent(None))}


class BatchOrder:
    """Mini-batches of indices: a permutation of the data per epoch drawn from
    ``(seed, epoch)``, rank ``r`` of ``w`` taking every w-th index; the last incomplete
    batch of an epoch is dropped. The state is two integers."""

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1, device: torch.device | None = None):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.shard = len(range(rank, n, world))
        self.batch = min(batch, self.shard)
        self.device = device
        self.epoch, self.pos = 0, 0
        self._perm: Tensor | None = None

    def _permutation(self) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g)[self.rank :: self.world].to(self.device)

    def next(self) -> Tensor:
        if self.pos + self.batch > self.shard:
            self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        if self._perm is None:
            self._perm = self._permutation()
        idx = self._perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return idx

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._perm = int(state["epoch"]), int(state["pos"]), None


class Objective(nn.Module):
    """Method and network as one module, so that DistributedDataParallel averages the
    gradients of both (a learned schedule lives in the method) and one optimizer sees all."""

    def __init__(self, method: nn.Module, net: nn.Module):
        super().__init__()
        self.method, self.net = method, net

    def forward(self, x: Tensor, generator: torch.Generator):
        out = self.method.loss(self.net, x, generator)
        return out.loss, out.log_snr, out.terms


def sample_preview(method, net, dataset, cfg: Config, n: int, steps: int, seed: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A few samples of the (EMA) net: uint8 images or raw-scale points."""
    from ..core.samplers import sample

    device = next(net.parameters()).device
    sampler = cfg.sample.get("sampler", "ancestral")
    g = torch.Generator(device=device).manual_seed(seed)
    options = with_data_range(sampler, sampler_options(cfg), dataset.kind)
    x = sample(sampler, method, net, (n, *dataset.shape), steps, generator=g, **options)
    if dataset.kind == "images":
        return dataset.to_uint8(x.float().cpu()), None
    return None, dataset.to_raw(x.float().cpu()).astype(np.float32)


def as_config(config: Config | dict | str | Path) -> Config:
    if isinstance(config, Config):
        return config.copy()
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)


def train_job(
    config: Config | dict | str | Path | None,
    run_dir: str | Path,
    control: JobControl | None = None,
    resume: bool = False,
    steps: int | None = None,
    device: str | None = None,
) -> Iterator[Event]:
    """Train a model as the config says, into ``run_dir``; yields events.

    ``resume=True`` continues the run in ``run_dir`` from its latest checkpoint (its own
    config.toml unless ``config`` is given); ``steps`` and ``device`` override
    ``[train] steps`` / ``device``. Bad input raises a ``StudioError`` before anything
    is written; a non-finite loss ends the job with ``Failed(nan=True)``.
    """
    control = control or JobControl()
    run = RunDir(run_dir)
    if resume:
        if not run.exists():
            raise RunError(f"cannot resume: {run.path} is not a run directory (no config.toml)")
        cfg = run.config if config is None else as_config(config)
    else:
        if config is None:
            raise ConfigError("train_job needs a config (or resume=True with a run directory)")
        cfg = as_config(config)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"--steps {steps!r}: expected an integer >= 1")
        cfg.train["steps"] = steps
    if device is not None:
        cfg.train["device"] = device
    cfg = parse_config(cfg.to_dict(), source=cfg.source)  # overrides are checked like the file

    # --- everything that can fail on bad input happens before the first write ---------------
    dataset = load_data(cfg)
    cfg = resolve(cfg, dataset)
    tr = cfg.train
    dev = pick_device(tr["device"])
    ctx = distributed.setup(dev)
    dev = distributed.rank_device(ctx, dev)
    if tr["threads"]:
        torch.set_num_threads(tr["threads"])
    if cfg.data["held_out"] > 0:
        train_set, _ = dataset.split(cfg.data["held_out"], seed=tr["seed"])
    else:
        train_set = dataset
    seed_everything(tr["seed"])  # initial weights: the same on every rank
    method, net = build_model(cfg, dataset.shape, dataset.kind)
    method.to(dev), net.to(dev)
    objective = Objective(method, net)
    params = [p for p in objective.parameters() if p.requires_grad]
    warm_up()
    optimizer = torch.optim.AdamW(params, lr=tr["lr"], weight_decay=tr["weight_decay"])
    ema = EMA(net, decay=tr["ema_decay"])
    ema_every = tr["ema_every"]
    order = BatchOrder(len(train_set), tr["batch_size"] // ctx.world or 1, tr["seed"], ctx.rank, ctx.world, dev)
    generator = torch.Generator(device=dev).manual_seed(tr["seed"] + 1000 * ctx.rank)
    seed_everything(tr["seed"] + 1000 * ctx.rank)  # dropout differs across ranks
    start, elapsed0, loss_smooth = 0, 0.0, math.nan
    last_ckpt: Path | None = None
    if resume:
        last_ckpt = run.latest_checkpoint()
        if last_ckpt is not None:
            state = load_checkpoint(last_ckpt)
            try:
                net.load_state_dict(state["net"])
                method.load_state_dict(state["method"])
                ema.load_state_dict(state["ema"])
                optimizer.load_state_dict(state["optimizer"])
            except (KeyError, RuntimeError, ValueError) as exc:
                raise CheckpointError(f"checkpoint {last_ckpt} does not match the run's config: {exc}") from None
            rng = state["rng"]
            if len(rng) == ctx.world:
                set_rng_state(rng[ctx.rank], generator)
            else:  # resumed on another number of ranks: fresh streams from (seed, rank, step)
                generator.manual_seed(tr["seed"] + 1000 * ctx.rank + 7919 * int(state["step"]))
                torch.manual_seed(tr["seed"] + 1000 * ctx.rank + 7919 * int(state["step"]))
            order.load_state_dict(state["data"])
            start, elapsed0 = int(state["step"]), float(state.get("elapsed", 0.0))
            loss_smooth = float(state.get("loss_smooth", math.nan))
    if not resume and (run.exists() or run.checkpoints()):
        raise RunError(f"run directory {run.path} already holds a run; resume it or choose another output folder")
    total = int(tr["steps"])
    if start >= total:
        raise ConfigError(f"run {run.path} is already at step {start} of [train] steps = {total}; pass a larger --steps")
    forward = objective.forward  # skips nn.Module.__call__'s hook machinery (no hooks here)
    if ctx.active:
        forward = nn.parallel.DistributedDataParallel(objective, device_ids=[dev.index] if dev.type == "cuda" else None)
    data = train_set.data.to(dev)
    amp = bool(tr["amp"]) and dev.type == "cuda"

    # --- the run directory (rank 0 writes, others only read) ------------------------------------
    main = ctx.is_main
    if main:
        run.path.mkdir(parents=True, exist_ok=True)
        run.checkpoint_dir.mkdir(exist_ok=True)
        if not resume:
            from .atomic import write_text

            write_text(run.config_path, cfg.to_toml())
            run.write_data_info(dataset)
        truncate_metrics(run.metrics_path, start)
        run.write_status("running", start)
    ctx.barrier()
    writer = MetricsWriter(run.metrics_path) if main else None

    yield Started("train", str(run.path), total, cfg.to_dict(), start_step=start)
    if ctx.active:
        yield Log("info", f"data-parallel on {ctx.world} ranks (rank {ctx.rank})")
    if resume and last_ckpt is not None:
        yield Log("info", f"resumed from {last_ckpt} at step {start}")

    log_every, ckpt_every = tr["log_every"], tr["checkpoint_every"]
    preview_every, grad_clip, base_lr, warmup = tr["preview_every"], tr["grad_clip"], tr["lr"], tr["warmup"]
    batch = order.batch
    memory = MemoryMonitor(dev)
    learned_schedule = LearnedScheduleMonitor(method.schedule)
    buf_loss: list[float] = []
    buf_norm: list[float] = []
    buf_terms: list[dict[str, Tensor]] = []
    buf_levels: list[tuple[Tensor, Tensor]] = []
    buf_lr: list[float] = []
    t0 = time.perf_counter()
    t_flush, step_flush = t0, start
    step = start

    def flush() -> Progress | None:
        """Rows to metrics.jsonl and one Progress event for the steps buffered."""
        nonlocal loss_smooth, t_flush, step_flush
        if not buf_loss:
            return None
        losses, norms = buf_loss, buf_norm
        # per-step means of the per-sample terms, one stack per key for the whole interval
        terms = {k: torch.stack([t[k] for t in buf_terms]).float().mean(1).cpu().tolist() for k in (buf_terms[0] if buf_terms else {})}
        now = time.perf_counter()
        first = step - len(losses) + 1
        rows = []
        for j, (loss, norm, lr) in enumerate(zip(losses, norms, buf_lr)):
            loss_smooth = loss if math.isnan(loss_smooth) else 0.98 * loss_smooth + 0.02 * loss
            row = {"step": first + j, "loss": loss, "loss_smooth": loss_smooth, "grad_norm": norm, "lr": lr}
            row.update({k: v[j] for k, v in terms.items()})
            rows.append(row)
        rate = (step - step_flush) / max(now - t_flush, 1e-9)
        # numpy copies owning their memory: nothing the worker keeps touches them
        lam = torch.cat([a for a, _ in buf_levels])[-LEVELS_PER_PROGRESS:].float().cpu().numpy().copy()
        lvl = torch.cat([b for _, b in buf_levels])[-LEVELS_PER_PROGRESS:].float().cpu().numpy().copy()
        figures = memory.read()
        rows[-1]["time"] = elapsed0 + now - t0
        rows[-1]["steps_per_s"] = rate
        rows[-1]["memory"] = figures
        # an evenly spaced sample of the pairs, so that a run followed from its directory
        # (another process, a cluster) still shows loss by noise level
        keep = slice(None, None, max(1, len(lam) // LEVELS_PER_ROW))
        rows[-1]["level_log_snr"] = [round(float(v), 3) for v in lam[keep][:LEVELS_PER_ROW]]
        rows[-1]["level_loss"] = [float(f"{v:.4g}") for v in lvl[keep][:LEVELS_PER_ROW]]
        if writer is not None:
            writer.write(rows)
        event = Progress(
            step, total, losses[-1], loss_smooth, lam, lvl, norms[-1], buf_lr[-1],
            rate * batch * ctx.world, (total - step) / max(rate, 1e-9), figures,
            learned_schedule.read(),
        )
        for b in (buf_loss, buf_norm, buf_terms, buf_levels, buf_lr):
            b.clear()
        t_flush, step_flush = now, step
        return event

    def save() -> Iterator[Event]:
        nonlocal last_ckpt
        rng = ctx.gather(get_rng_state(generator))
        if main:
            state = {
                "step": step,
                "net": net.state_dict(),
                "ema": ema.state_dict(),
                "method": method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng,
                "data": order.state_dict(),
                "loss_smooth": loss_smooth,
                "elapsed": elapsed0 + time.perf_counter() - t0,
                "world": ctx.world,
            }
            last_ckpt = save_checkpoint(run.checkpoint_dir / checkpoint_name(step), state)
            for old in run.checkpoints()[: -tr["keep_checkpoints"]]:
                old.unlink(missing_ok=True)
            run.write_status("running", step, checkpoint=last_ckpt.name)
            yield CheckpointSaved(step, str(last_ckpt))
        ctx.barrier()

    def preview() -> Iterator[Event]:
        if not main:
            return
        images, points = sample_preview(method, ema.module, dataset, cfg, tr["preview_n"], tr["preview_steps"], tr["seed"])
        from .export import save_grid_png, save_scatter_png

        path = run.preview_dir / f"step_{step:08d}.png"
        if images is not None:
            save_grid_png(images, path, scale=max(1, 64 // max(images.shape[1:3])))
        else:
            save_scatter_png(points, path, size=384)
        yield Preview(step, images, points)

    try:
        objective.train()
        for step0 in range(start, total):
            control.checkpoint()
            lr = base_lr * min(1.0, (step0 + 1) / warmup) if warmup else base_lr
            if step0 <= warmup:  # after the warm-up the rate stays put: no per-step writes
                for group in optimizer.param_groups:
                    group["lr"] = lr
            x = data[order.next()]
            if amp:
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    loss_vec, log_snr, terms = forward(x, generator)
            else:
                loss_vec, log_snr, terms = forward(x, generator)
            loss = loss_vec.float().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            norm_t = nn.utils.get_total_norm(grads, foreach=True)
            # the one host read a step: a NaN or inf anywhere in the gradients makes the norm non-finite
            loss_f, norm = float(loss.detach()), float(norm_t)
            step = step0 + 1
            if not math.isfinite(loss_f + norm):
                step = step0
                if main:
                    event = flush()
                    if event is not None:
                        yield event
                    run.write_status("failed", step, message=f"non-finite loss at step {step0 + 1}")
                where = f"last good checkpoint: {last_ckpt}" if last_ckpt else "no checkpoint was saved yet"
                yield Failed(
                    f"loss became {loss_f} (gradient norm {norm}) at step {step0 + 1}; the update was skipped and "
                    f"training stopped ({where}; lower [train] lr or raise warmup, then resume)",
                    step=step0 + 1, nan=True, checkpoint=str(last_ckpt) if last_ckpt else None,
                )
                return
            # clip_grad_norm_'s factor, applied only where it is < 1 (it multiplies by 1 otherwise)
            coef = grad_clip / (norm + 1e-6)
            if grad_clip > 0 and coef < 1.0:
                torch._foreach_mul_(grads, coef)
            optimizer.step()
            if step % ema_every == 0:
                ema.update(net, steps=ema_every)
            buf_loss.append(loss_f)
            buf_norm.append(norm)
            buf_lr.append(lr)
            buf_levels.append((log_snr.detach(), loss_vec.detach()))
            if terms:
                buf_terms.append({k: v.detach() for k, v in terms.items()})
            if step % log_every == 0 or step == total:
                event = flush()
                if event is not None:
                    yield event
            if step % ckpt_every == 0 or step == total:
                yield from save()
            if preview_every and (step % preview_every == 0 or step == total):
                yield from preview()
    except Cancelled:
        event = flush()
        if event is not None:
            yield event
        if step > start and (last_ckpt is None or not last_ckpt.name == checkpoint_name(step)):
            yield from save()
        if main:
            run.write_status("cancelled", step, checkpoint=last_ckpt.name if last_ckpt else None)
        yield Finished(step, str(run.path), {"cancelled": True, "checkpoint": str(last_ckpt) if last_ckpt else None})
        return
    finally:
        if writer is not None:
            writer.close()

    result: dict[str, Any] = {"checkpoint": str(last_ckpt), "loss": loss_smooth}
    if ctx.active:
        # the replicas must agree: every rank's parameter checksum, written by rank 0
        sums = ctx.gather([float(p.detach().double().sum()) for p in objective.parameters()])
        result["rank_checksums"] = sums
        result["ranks_agree"] = all(s == sums[0] for s in sums)
        if main:
            import json

            from .atomic import write_text

            write_text(run.path / "distributed.json", json.dumps({"world": ctx.world, **{k: result[k] for k in ("rank_checksums", "ranks_agree")}}))
    if main:
        run.write_status("finished", step, checkpoint=last_ckpt.name if last_ckpt else None)
    yield Finished(step, str(run.path), result)

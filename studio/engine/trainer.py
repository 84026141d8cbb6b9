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
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..core.ema import EMA
from ..core.errors import ConfigError, StudioError
from ..core.seeding import get_rng_state, seed_everything, set_rng_state
from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Config, build_model, load_config, load_data, parse_config, resolve, sampler_options, with_data_range
from .control import Cancelled, JobControl
from .events import SCHEDULE_TIMES, CheckpointSaved, Event, Failed, Finished, Log, Preview, Progress, Started
from .run_lock import RunLock, check_writable
from .runs import MetricsWriter, RunDir, RunError, checkpoint_name, truncate_metrics

LEVELS_PER_PROGRESS = 4096  # cap on the per-sample (log-SNR, loss) pairs one Progress carries
LEVELS_PER_ROW = 64  # the pairs kept in metrics.jsonl per flush (loss by noise level for a follower)


@functools.lru_cache(maxsize=None)
def warm_up() -> None:
    """Construct and step an AdamW once: the first one imports ~830 modules (0.8 s,
    docs/PITFALLS.md). The app calls this at start-up, before any job runs on a worker."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    p.grad = torch.zeros(1)
    opt.step()


_warm_up_thread: threading.Thread | None = None


def warm_up_in_background() -> threading.Thread:
    """:func:`warm_up` on a daemon thread, once per process (the app starts it right after
    its window shows: the window appears ~3 s sooner, and the first Start finds the
    optimizer imported). A job started meanwhile warms up in its own worker, waiting on
    the same import locks, never on the GUI thread."""
    global _warm_up_thread
    if _warm_up_thread is None:
        _warm_up_thread = threading.Thread(target=warm_up, name="optimizer-warm-up", daemon=True)
        _warm_up_thread.start()
    return _warm_up_thread


def warm_up_pending() -> bool:
    """Whether the background warm-up is still running (a Trainer built now, e.g. by
    ``train_job`` on the GUI thread, would wait on its import locks)."""
    return _warm_up_thread is not None and _warm_up_thread.is_alive()


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


def train_job(config: Config | dict | str | Path | None, run_dir: str | Path, **options: Any) -> Iterator[Event]:
    """Train a model as the config says, into ``run_dir``; returns the generator of events.

    Options (those of :class:`Trainer`): ``control=None, resume=False, steps=None,
    device=None``. ``resume=True`` continues the run in ``run_dir`` from its latest checkpoint (its own
    config.toml unless ``config`` is given); ``steps`` and ``device`` override
    ``[train] steps`` / ``device``. Bad input raises a ``StudioError`` here, at the call,
    before anything is written (like ``Sampler.__call__``); a non-finite loss ends the
    job with ``Failed(nan=True)``, any other exception with ``Failed`` and status failed.
    """
    trainer = Trainer(config, run_dir, **options)
    if trainer.tr["tensorboard"] and trainer.main:  # RUN/tensorboard/ beside metrics.jsonl
        from .tensorboard_sink import with_tensorboard

        return with_tensorboard(trainer.run(), trainer.run_dir.path)
    return trainer.run()


class Trainer:
    """One training run. ``__init__`` checks every input and builds everything (data,
    model, optimizer, the resumed state) without writing; ``run()`` is the generator of
    events that writes the run directory. Whatever ends the run, ``status.json`` says
    how: finished, cancelled (with the checkpoint saved on the way out) or failed (with
    the message), so the same process, or another, can resume it."""

    def __init__(
        self,
        config: Config | dict | str | Path | None,
        run_dir: str | Path,
        control: JobControl | None = None,
        resume: bool = False,
        steps: int | None = None,
        device: str | None = None,
    ):
        self.control = control or JobControl()
        self.resume = resume
        run = self.run_dir = RunDir(run_dir)
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

        self.dataset = dataset = load_data(cfg)
        self.cfg = cfg = resolve(cfg, dataset)
        tr = self.tr = cfg.train
        dev = pick_device(tr["device"])
        ctx = self.ctx = distributed.setup(dev)
        dev = self.dev = distributed.rank_device(ctx, dev)
        if tr["threads"]:
            torch.set_num_threads(tr["threads"])
        if cfg.data["held_out"] > 0:
            train_set, _ = dataset.split(cfg.data["held_out"], seed=tr["seed"])
        else:
            train_set = dataset
        seed_everything(tr["seed"])  # initial weights: the same on every rank
        method, net = build_model(cfg, dataset.shape, dataset.kind)
        method.to(dev), net.to(dev)
        # the config is good (a bad value is the more useful message); now the folder
        if not resume and (run.exists() or run.checkpoints()):
            raise RunError(f"run directory {run.path} already holds a run; resume it or choose another output folder")
        check_writable(run.path)  # another process writing this run: RunLocked now, not mid-run
        self.method, self.net = method, net
        self.objective = Objective(method, net)
        self.params = [p for p in self.objective.parameters() if p.requires_grad]
        warm_up()
        self.optimizer = torch.optim.AdamW(self.params, lr=tr["lr"], weight_decay=tr["weight_decay"])
        self.ema = EMA(net, decay=tr["ema_decay"])
        self.order = BatchOrder(len(train_set), tr["batch_size"] // ctx.world or 1, tr["seed"], ctx.rank, ctx.world, dev)
        self.generator = torch.Generator(device=dev).manual_seed(tr["seed"] + 1000 * ctx.rank)
        seed_everything(tr["seed"] + 1000 * ctx.rank)  # dropout differs across ranks
        self.start, self.elapsed0, self.loss_smooth = 0, 0.0, math.nan
        self.last_ckpt: Path | None = None
        if resume:
            self._load_latest()
        self.total = int(tr["steps"])
        if self.start >= self.total:
            raise ConfigError(f"run {run.path} is already at step {self.start} of [train] steps = {self.total}; "
                              f"raise steps to continue it (the CLI's --steps, the Training panel's steps)")
        self.step = self.start
        self.data = train_set.data.to(dev)
        self.main = ctx.is_main
        self.writer: MetricsWriter | None = None

    def _load_latest(self) -> None:
        ckpt = self.last_ckpt = self.run_dir.latest_checkpoint()
        if ckpt is None:
            return
        state = load_checkpoint(ckpt)
        try:
            self.net.load_state_dict(state["net"])
            self.method.load_state_dict(state["method"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt} does not match the run's config: {exc}") from None
        ctx, tr, rng = self.ctx, self.tr, state["rng"]
        if len(rng) == ctx.world:
            set_rng_state(rng[ctx.rank], self.generator)
        else:  # resumed on another number of ranks: fresh streams from (seed, rank, step)
            self.generator.manual_seed(tr["seed"] + 1000 * ctx.rank + 7919 * int(state["step"]))
            torch.manual_seed(tr["seed"] + 1000 * ctx.rank + 7919 * int(state["step"]))
        self.order.load_state_dict(state["data"])
        self.start, self.elapsed0 = int(state["step"]), float(state.get("elapsed", 0.0))
        self.loss_smooth = float(state.get("loss_smooth", math.nan))

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        """The events of the run; the error path writes the status whatever went wrong."""
        # one writer per run (engine.run_lock): a second one gets RunLocked before anything is written
        self._lock = RunLock(self.run_dir).acquire() if self.main else None
        try:
            yield from self._run()
        except GeneratorExit:  # the consumer closed us mid-run: say so, then let it close
            self._write_status("cancelled", message="the job was closed before it ended")
            raise
        except Exception as exc:
            message = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
            message = f"{message} (at step {self.step})"
            self._write_status("failed", message=message)
            if not isinstance(exc, (StudioError, OSError)):  # a full disk or a bad file needs its message, not a traceback
                yield Log("error", traceback.format_exc())
            yield Failed(message, step=self.step, checkpoint=str(self.last_ckpt) if self.last_ckpt else None)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: record it, then go on ending
            self._write_status("failed", message=f"{type(exc).__name__} at step {self.step}")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            if self._lock is not None:
                self._lock.release()

    def _write_status(self, state: str, **extra: Any) -> None:
        if self.main and self.run_dir.path.is_dir():
            ckpt = self.last_ckpt.name if self.last_ckpt else None
            try:
                self.run_dir.write_status(state, self.step, checkpoint=ckpt, **extra)
            except OSError:  # the folder went away: nothing left to tell
                pass

    def _prepare_dir(self) -> None:
        """The run directory (rank 0 writes, others only read)."""
        run = self.run_dir
        if self.main:
            run.path.mkdir(parents=True, exist_ok=True)
            run.checkpoint_dir.mkdir(exist_ok=True)
            if not self.resume:
                from .atomic import write_text

                write_text(run.config_path, self.cfg.to_toml())
                run.write_data_info(self.dataset)
            truncate_metrics(run.metrics_path, self.start)
            run.write_status("running", self.start)
        self.ctx.barrier()
        self.writer = MetricsWriter(run.metrics_path) if self.main else None

    def _run(self) -> Iterator[Event]:
        self._prepare_dir()
        ctx, tr, run, cfg = self.ctx, self.tr, self.run_dir, self.cfg
        start, total, dev = self.start, self.total, self.dev
        yield Started("train", str(run.path), total, cfg.to_dict(), start_step=start)
        if ctx.active:
            yield Log("info", f"data-parallel on {ctx.world} ranks (rank {ctx.rank})")
        if self.resume and self.last_ckpt is not None:
            yield Log("info", f"resumed from {self.last_ckpt} at step {start}")

        forward = self.objective.forward  # skips nn.Module.__call__'s hook machinery (no hooks here)
        if ctx.active:
            forward = nn.parallel.DistributedDataParallel(self.objective, device_ids=[dev.index] if dev.type == "cuda" else None)
        amp = bool(tr["amp"]) and dev.type == "cuda"
        control, optimizer, params, net, ema, order, data, generator = (
            self.control, self.optimizer, self.params, self.net, self.ema, self.order, self.data, self.generator)
        log_every, ckpt_every, ema_every = tr["log_every"], tr["checkpoint_every"], tr["ema_every"]
        preview_every, grad_clip, base_lr, warmup = tr["preview_every"], tr["grad_clip"], tr["lr"], tr["warmup"]
        self._memory = MemoryMonitor(dev)
        self._learned = LearnedScheduleMonitor(self.method.schedule)
        self._buf: dict[str, list] = {"loss": [], "norm": [], "terms": [], "levels": [], "lr": []}
        buf_loss, buf_norm, buf_lr = self._buf["loss"], self._buf["norm"], self._buf["lr"]
        buf_levels, buf_terms = self._buf["levels"], self._buf["terms"]
        self._t0 = time.perf_counter()
        self._t_flush, self._step_flush = self._t0, start
        try:
            self.objective.train()
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
                if not math.isfinite(loss_f + norm):
                    yield from self._nan_stop(step0, loss_f, norm)
                    return
                self.step = step = step0 + 1
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
                    event = self._flush()
                    if event is not None:
                        yield event
                if step % ckpt_every == 0 or step == total:
                    yield from self._save()
                if preview_every and (step % preview_every == 0 or step == total):
                    yield from self._preview()
        except Cancelled:
            yield from self._cancelled()
            return
        yield from self._finish()

    def _nan_stop(self, step0: int, loss_f: float, norm: float) -> Iterator[Event]:
        if self.main:
            event = self._flush()
            if event is not None:
                yield event
            self.run_dir.write_status("failed", step0, message=f"non-finite loss at step {step0 + 1}")
        last = self.last_ckpt
        where = f"last good checkpoint: {last}" if last else "no checkpoint was saved yet"
        yield Failed(
            f"loss became {loss_f} (gradient norm {norm}) at step {step0 + 1}; the update was skipped and "
            f"training stopped ({where}; lower [train] lr or raise warmup, then resume)",
            step=step0 + 1, nan=True, checkpoint=str(last) if last else None,
        )

    def _cancelled(self) -> Iterator[Event]:
        event = self._flush()
        if event is not None:
            yield event
        step, last = self.step, self.last_ckpt
        if step > self.start and (last is None or not last.name == checkpoint_name(step)):
            yield from self._save()
        self._write_status("cancelled")
        last = self.last_ckpt
        yield Finished(step, str(self.run_dir.path), {"cancelled": True, "checkpoint": str(last) if last else None})

    def _finish(self) -> Iterator[Event]:
        ctx, run = self.ctx, self.run_dir
        result: dict[str, Any] = {"checkpoint": str(self.last_ckpt), "loss": self.loss_smooth}
        if ctx.active:
            # the replicas must agree: every rank's parameter checksum, written by rank 0
            sums = ctx.gather([float(p.detach().double().sum()) for p in self.objective.parameters()])
            result["rank_checksums"] = sums
            result["ranks_agree"] = all(s == sums[0] for s in sums)
            if self.main:
                import json

                from .atomic import write_text

                write_text(run.path / "distributed.json", json.dumps({"world": ctx.world, **{k: result[k] for k in ("rank_checksums", "ranks_agree")}}))
        self._write_status("finished")
        yield Finished(self.step, str(run.path), result)

    def _flush(self) -> Progress | None:
        """Rows to metrics.jsonl and one Progress event for the steps buffered."""
        buf = self._buf
        losses, norms, buf_lr, buf_terms, buf_levels = buf["loss"], buf["norm"], buf["lr"], buf["terms"], buf["levels"]
        if not losses:
            return None
        step, total = self.step, self.total
        # per-step means of the per-sample terms, one stack per key for the whole interval
        terms = {k: torch.stack([t[k] for t in buf_terms]).float().mean(1).cpu().tolist() for k in (buf_terms[0] if buf_terms else {})}
        now = time.perf_counter()
        first = step - len(losses) + 1
        rows = []
        loss_smooth = self.loss_smooth
        for j, (loss, norm, lr) in enumerate(zip(losses, norms, buf_lr)):
            loss_smooth = loss if math.isnan(loss_smooth) else 0.98 * loss_smooth + 0.02 * loss
            row = {"step": first + j, "loss": loss, "loss_smooth": loss_smooth, "grad_norm": norm, "lr": lr}
            row.update({k: v[j] for k, v in terms.items()})
            rows.append(row)
        self.loss_smooth = loss_smooth
        rate = (step - self._step_flush) / max(now - self._t_flush, 1e-9)
        # numpy copies owning their memory: nothing the worker keeps touches them
        lam = torch.cat([a for a, _ in buf_levels])[-LEVELS_PER_PROGRESS:].float().cpu().numpy().copy()
        lvl = torch.cat([b for _, b in buf_levels])[-LEVELS_PER_PROGRESS:].float().cpu().numpy().copy()
        figures = self._memory.read()
        rows[-1]["time"] = self.elapsed0 + now - self._t0
        rows[-1]["steps_per_s"] = rate
        rows[-1]["memory"] = figures
        # an evenly spaced sample of the pairs, so that a run followed from its directory
        # (another process, a cluster) still shows loss by noise level
        keep = slice(None, None, max(1, len(lam) // LEVELS_PER_ROW))
        rows[-1]["level_log_snr"] = [round(float(v), 3) for v in lam[keep][:LEVELS_PER_ROW]]
        rows[-1]["level_loss"] = [float(f"{v:.4g}") for v in lvl[keep][:LEVELS_PER_ROW]]
        if self.writer is not None:
            self.writer.write(rows)
        event = Progress(
            step, total, losses[-1], loss_smooth, lam, lvl, norms[-1], buf_lr[-1],
            rate * self.order.batch * self.ctx.world, (total - step) / max(rate, 1e-9), figures,
            self._learned.read(),
        )
        for b in buf.values():
            b.clear()
        self._t_flush, self._step_flush = now, step
        return event

    def _save(self) -> Iterator[Event]:
        ctx, run, step = self.ctx, self.run_dir, self.step
        rng = ctx.gather(get_rng_state(self.generator))
        if self.main:
            state = {
                "step": step,
                "net": self.net.state_dict(),
                "ema": self.ema.state_dict(),
                "method": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
                "data": self.order.state_dict(),
                "loss_smooth": self.loss_smooth,
                "elapsed": self.elapsed0 + time.perf_counter() - self._t0,
                "world": ctx.world,
            }
            self.last_ckpt = save_checkpoint(run.checkpoint_dir / checkpoint_name(step), state)
            for old in run.checkpoints()[: -self.tr["keep_checkpoints"]]:
                old.unlink(missing_ok=True)
            run.write_status("running", step, checkpoint=self.last_ckpt.name)
            yield CheckpointSaved(step, str(self.last_ckpt))
        ctx.barrier()

    def _preview(self) -> Iterator[Event]:
        if not self.main:
            return
        tr, step = self.tr, self.step
        images, points = sample_preview(self.method, self.ema.module, self.dataset, self.cfg, tr["preview_n"], tr["preview_steps"], tr["seed"])
        from .export import save_grid_png, save_scatter_png

        path = self.run_dir.preview_dir / f"step_{step:08d}.png"
        if images is not None:
            save_grid_png(images, path, scale=max(1, 64 // max(images.shape[1:3])))
        else:
            save_scatter_png(points, path, size=384)
        yield Preview(step, images, points)

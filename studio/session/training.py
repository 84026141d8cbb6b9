"""The training session: one studio's training job or followed run, without Qt.

It holds the job lifecycle (start, resume, pause, stop, the end and what went wrong),
the run on screen, the newest checkpoint and the run hand-off: the run is announced to
``AppState`` (``set_run_dir``) on the job's ``Started`` event, once the directory exists,
and every checkpoint as it lands (``AppState.offer_checkpoint``), so the viewer can
sample the model while it is still training. A run written by another process is
followed read-only (``RunWatch``) and handed over the same way; when its writer dies the
session says ``stopped`` and it can be resumed here. The training panel is a view that
takes a session and subscribes to its signals; tests drive it headless with ``poll()``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from psygnal import Signal

from studio.core.errors import StudioError
from studio.engine.config import Config
from studio.engine.events import CheckpointSaved, Failed, Finished, Started
from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir, RunError
from studio.engine.trainer import train_job

from .follow import RunWatch
from .jobs import JobDriver, poll_until
from .state import AppState


def default_runs_root() -> Path:
    return Path.home() / "diffusion-studio" / "runs"


def default_threads() -> int | None:
    """One intra-op thread on small machines while the app is up (docs/PITFALLS.md: two
    threads collapse throughput whenever another thread wants a core)."""
    return 1 if (os.cpu_count() or 1) <= 2 else None


def new_run_dir(cfg: Config, root: str | Path | None = None) -> Path:
    """A fresh folder under ``root`` named for the method, the data and the time."""
    root = Path(root or default_runs_root()).expanduser()
    data = cfg.data.get("name") or cfg.data.get("source", "data")
    stem = f"{cfg.method.get('name', 'ddpm')}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = root / stem, 2
    while path.exists():
        path, k = root / f"{stem}-{k}", k + 1
    return path


class TrainingSession:
    """``mode``: ``idle`` | ``training`` (our job) | ``following`` (another process's
    run). Signals: ``run_started(Path)`` (the job's Started: the folder exists now),
    ``events(list)`` (our job's events, batched), ``ended(last)``, ``paused_changed(bool)``,
    ``followed(RunDir)`` (a run opened read-only; its rows come next on ``watch.rows``),
    ``checkpoint(str)`` (a new checkpoint, ours or the followed run's),
    ``status_changed(dict)`` (a followed run's status, ``"follow"`` = running | stopped |
    finished | failed | cancelled), ``error(str)``."""

    run_started = Signal(object)
    events = Signal(list)
    ended = Signal(object)
    paused_changed = Signal(bool)
    followed = Signal(object)
    checkpoint = Signal(str)
    status_changed = Signal(dict)
    error = Signal(str)

    def __init__(self, state: AppState):
        # the first AdamW imports ~830 modules (docs/PITFALLS.md): the app warms it up on a
        # background thread once its window shows (gui.app, engine.trainer.warm_up_in_background),
        # not here, where it delayed the window by ~3 s
        self.state = state
        self.driver = JobDriver()
        self.watch = RunWatch()
        self.mode = "idle"
        self.run_dir: Path | None = None
        self.config: dict[str, Any] = {}  # sections of the run on screen
        self.latest_checkpoint: str | None = None
        self.last_error: str | None = None
        self.driver.events.connect(self._on_events)
        self.driver.ended.connect(self._on_ended)
        self.driver.paused_changed.connect(self.paused_changed.emit)
        self.watch.checkpoint_found.connect(self._on_checkpoint)
        self.watch.status_changed.connect(self.status_changed.emit)
        self.watch.failed.connect(self._on_error)
        state.run_dir_changed.connect(self._on_state_run_dir)

    # --- what the session shows -----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.driver.running

    @property
    def live_elsewhere(self) -> bool:
        """The run on screen is being written by another live process (follow only)."""
        if self.mode == "training" or self.run_dir is None:
            return False
        return run_liveness(self.run_dir) == "running"

    @property
    def can_resume(self) -> bool:
        return not self.running and self.run_dir is not None and not self.live_elsewhere

    # --- jobs ---------------------------------------------------------------------------------
    def start(self, cfg: Config, run_dir: str | Path | None = None) -> Path:
        """Train a new run (a fresh folder under the default root unless given). Bad input
        raises a ``StudioError`` here and nothing is written."""
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(cfg)
        self._launch(run_dir, cfg.to_dict(), lambda control: train_job(cfg, run_dir, control=control))
        return run_dir

    def resume(self, path: str | Path | None = None, steps: int | None = None) -> Path:
        """Continue a run (default: the one on screen) from its latest checkpoint, up to
        ``steps``; a run another live process writes can only be followed."""
        path = Path(path) if path is not None else self.run_dir
        if path is None:
            raise RunError("no run to resume: open one first")
        if run_liveness(path) == "running":
            status = RunDir(path).status()
            raise RunError(f"{path} is being written by another process (pid {status.get('pid')}); it can only be followed")
        cfg = self.config if path == self.run_dir else {}
        self._launch(path, cfg, lambda control: train_job(None, path, control=control, resume=True, steps=steps))
        return path

    def _launch(self, run_dir: Path, sections: dict[str, Any], factory) -> None:
        if self.running:
            raise RunError("a training job is running here; stop it first")
        threads = default_threads()
        if threads:
            torch.set_num_threads(threads)
        self.driver.start(factory)  # raises a StudioError on bad input, before any thread
        self.watch.stop()
        self.mode, self.run_dir, self.config = "training", Path(run_dir), dict(sections)
        self.latest_checkpoint, self.last_error = None, None

    def pause(self) -> None:
        self.driver.pause()

    def resume_job(self) -> None:
        self.driver.resume()

    def toggle_pause(self) -> None:
        self.resume_job() if self.driver.paused else self.pause()

    def stop(self) -> None:
        """Stop after the current step; the job saves a checkpoint."""
        self.driver.cancel()

    def stop_and_wait(self, timeout: float | None = None) -> bool:
        return self.driver.stop_and_wait(timeout)

    def poll(self) -> None:
        """The session's clock (the app's QTimer; a loop in tests): our job's events, then
        what is new in a followed run."""
        self.driver.poll()
        self.watch.poll()

    def wait(self, timeout: float) -> bool:
        """Headless: poll until our job ended. True if it did."""
        return poll_until(self.poll, lambda: not self.running, timeout)

    # --- following a run another process writes -----------------------------------------------
    def follow(self, path: str | Path) -> RunDir:
        """Show a run read-only (followed live while another process writes it); a
        ``StudioError`` names the folder when it is not a run. Hands it to the state."""
        if self.running:
            raise RunError("a training job is running here; stop it to open another run")
        run = RunDir(path).require()
        cfg = run.config
        self.mode, self.run_dir, self.config = "following", run.path, cfg.to_dict()
        self.latest_checkpoint, self.last_error = None, None
        self.followed.emit(run)
        self.watch.follow(run.path)  # delivers the rows so far, the newest checkpoint and status
        if self.state.run_dir is None or Path(self.state.run_dir) != run.path:
            self.state.set_run_dir(run.path)
            latest = run.latest_checkpoint()
            if latest is not None:
                self.state.offer_checkpoint(latest)
        return run

    # --- events ---------------------------------------------------------------------------------
    def _on_events(self, batch: list) -> None:
        for event in batch:
            if isinstance(event, Started):
                self.config = dict(event.config)
                self.run_dir = Path(event.run_dir)
                if self.state.run_dir is None or Path(self.state.run_dir) != self.run_dir:
                    self.state.set_run_dir(self.run_dir)  # the folder exists now
                self.run_started.emit(self.run_dir)
            elif isinstance(event, CheckpointSaved):
                self._on_checkpoint(event.path)
            elif isinstance(event, Failed):
                self.last_error = event.message
        self.events.emit(batch)

    def _on_checkpoint(self, path: str) -> None:
        self.latest_checkpoint = str(path)
        self.state.offer_checkpoint(path)
        self.checkpoint.emit(str(path))

    def _on_ended(self, last) -> None:
        self.mode = "idle"
        if isinstance(last, Failed):
            self.last_error = last.message
        elif isinstance(last, Finished):
            self.last_error = None
        self.ended.emit(last)

    def _on_error(self, message: str) -> None:
        self.last_error = message
        self.error.emit(message)

    def _on_state_run_dir(self, path) -> None:
        """"Open run" anywhere opens it here too (unless our job is running)."""
        if path is None or (self.run_dir is not None and Path(path) == self.run_dir) or self.running:
            return
        try:
            self.follow(path)
        except StudioError as e:
            self._on_error(f"cannot open run {path}: {e}")

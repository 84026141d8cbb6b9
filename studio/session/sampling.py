"""The sampling session: the run the viewer samples, its checkpoints and model, and the
sampling and branch jobs, without Qt.

It follows ``AppState.run_dir`` (set by "Open run" anywhere, or by a training session on
its job's ``Started``) and ``AppState.checkpoint_offered`` (each checkpoint as it lands),
so the newest checkpoint of a run still training is offered with no dialog. Jobs write
their steps to a trajectory HDF5 (``sample_job(..., trajectory=..., records=False)``);
the viewer panel follows the file. How many grid points a branch from record ``k``
keeps is the sampler's answer (``Sampler.branch_steps``), not the viewer's guess.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from psygnal import Signal

from studio.core import samplers as _samplers  # noqa: F401 - registers the samplers
from studio.core.errors import StudioError
from studio.core.registry import SAMPLERS
from studio.engine.jobs import sample_job
from studio.engine.runs import RunDir, RunError

from .jobs import JobDriver
from .state import AppState


def branch_steps(method, settings: dict[str, Any], index: int) -> int:
    """The ``steps`` of a branch from record ``index`` of a run made with ``settings``
    (sampler, steps, options) that continues it on the same grid."""
    name, steps = settings["sampler"], int(settings["steps"])
    options = dict(settings.get("options") or {})
    sampler = SAMPLERS.get(name)
    return max(1, int(sampler.branch_steps(method, steps, index, **options)))


def history_depth(sampler: str) -> int:
    """How many records before a branch the sampler ``sampler`` reads (0: none)."""
    return int(SAMPLERS.get(sampler).history)


class SamplingSession:
    """Signals: ``run_changed(RunDir | None)``, ``open_failed(path, message)`` (a folder
    that is not a usable run), ``checkpoints_changed(list[Path])`` (a new checkpoint
    landed in the run; the newest is last), ``model_loaded(model)``. ``main`` and
    ``branch`` are the two jobs' drivers."""

    run_changed = Signal(object)
    open_failed = Signal(object, str)
    checkpoints_changed = Signal(list)
    model_loaded = Signal(object)

    def __init__(self, state: AppState):
        self.state = state
        self.run: RunDir | None = None
        self.checkpoints: list[Path] = []
        self.model = None  # (method, net, data_info) of the chosen checkpoint
        self.main = JobDriver()
        self.branch = JobDriver()
        state.run_dir_changed.connect(self.open)
        state.checkpoint_offered.connect(self._on_checkpoint_offered)

    # --- the run ---------------------------------------------------------------------------
    def open(self, path: str | Path | None) -> RunDir | None:
        """Sample from this run (None: no run). A folder that is not a run is reported
        on ``open_failed`` naming it; the session then has no run."""
        self.run, self.model, self.checkpoints = None, None, []
        if path is None:
            self.run_changed.emit(None)
            return None
        try:
            run = RunDir(path).require()
            run.config  # noqa: B018 - a bad config.toml is named now
            run.data_info()
        except StudioError as exc:
            self.run_changed.emit(None)
            self.open_failed.emit(Path(path), str(exc))
            return None
        self.run, self.checkpoints = run, run.checkpoints()
        self.run_changed.emit(run)
        return run

    def refresh_checkpoints(self) -> bool:
        """Re-read the run's checkpoints; True (and ``checkpoints_changed``) when new ones."""
        if self.run is None:
            return False
        found = self.run.checkpoints()
        if found == self.checkpoints:
            return False
        self.checkpoints = found
        self.checkpoints_changed.emit(list(found))
        return True

    def _on_checkpoint_offered(self, path) -> None:
        if self.run is not None and Path(path).resolve().parent.parent == self.run.path.resolve():
            self.refresh_checkpoints()

    def load_model(self, weights: str = "ema", path: str | Path | None = None):
        """(method, net, data_info) of a checkpoint (default the newest); a
        ``StudioError`` names a bad one."""
        self.model = None
        if self.run is None:
            raise RunError("Open a run first (File > Open run, or the Open… button).")
        self.model = self.run.load_model(weights, path=path)
        self.model_loaded.emit(self.model)
        return self.model

    def require_checkpoint(self) -> None:
        if self.run is None:
            raise RunError("Open a run first (File > Open run, or the Open… button).")
        self.refresh_checkpoints()
        if not self.checkpoints:
            raise RunError(f"Run {self.run.path} has no checkpoint in {self.run.checkpoint_dir}; train it first.")

    def trajectory_path(self, label: str, settings: dict[str, Any]) -> Path:
        """A new trajectory file in the run's samples/ (beside us when it is read-only)."""
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"
        name = f"viewer_{stamp}_{label}_{settings['sampler']}_seed{settings['seed']}.h5"
        folder = self.run.samples_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return folder / name
        except OSError:  # a read-only run (copied from elsewhere)
            return Path(tempfile.mkdtemp(prefix="studio-viewer-")) / name

    # --- jobs -------------------------------------------------------------------------------
    def start_sampling(self, kwargs: dict[str, Any]) -> Path:
        """Sample into a new trajectory file (returned); ``kwargs`` are ``sample_job``'s.
        Bad input raises a ``StudioError`` here and no file is written."""
        self.require_checkpoint()
        path = self.trajectory_path("main", kwargs)
        run_dir = self.run.path
        self.main.start(lambda control: sample_job(run_dir, trajectory=path, control=control, records=False, **kwargs))
        return path

    def start_branch(self, main_settings: dict[str, Any], index: int, x_init, t_start: float, kwargs: dict[str, Any],
                     gate: Callable[[Iterator, Any], Iterator] | None = None, x0_prev=None,
                     t_prev=None) -> Path:
        """Run the sampler again from record ``index`` of a main run (its state ``x_init``
        at time ``t_start``) into a new trajectory file (returned). ``x0_prev``, ``t_prev``:
        the x0_hat and t of records ``index - 1``, ``index - 2``, ... (one each or lists,
        most recent first; :func:`history_depth` says how many the sampler reads), the
        history a multistep sampler (DPM-Solver++(2M), (3M)) continues from (others
        ignore it). ``gate(job, control)`` may wrap the job on the worker (step mode)."""
        self.require_checkpoint()
        path = self.trajectory_path(f"branch{index}", kwargs)
        run_dir = self.run.path

        def factory(control):
            job = sample_job(run_dir, trajectory=path, control=control, t_start=t_start, x_init=x_init,
                             x0_prev=x0_prev, t_prev=t_prev,
                             checkpoint=main_settings.get("checkpoint", "ema"),
                             checkpoint_path=main_settings.get("checkpoint_path"), **kwargs)
            return gate(job, control) if gate is not None else job

        self.branch.start(factory)
        return path

    def branch_steps(self, settings: dict[str, Any], index: int) -> int:
        """Grid points left after record ``index`` of the run ``settings`` describe."""
        if self.model is None:
            self.load_model(settings.get("checkpoint", "ema"), settings.get("checkpoint_path"))
        return branch_steps(self.model[0], settings, index)

    def poll(self) -> None:
        self.main.poll()
        self.branch.poll()

    def shutdown(self, timeout: float = 10) -> None:
        for driver in (self.main, self.branch):
            driver.stop_and_wait(timeout)

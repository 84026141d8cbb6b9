"""The sampler lab's model, without Qt: the run being compared, its checkpoints, the
samplers that serve its family, one ``engine.compare.compare_samplers`` job at a time and
the table it fills in.

It follows ``AppState.run_dir`` and each checkpoint ``AppState.checkpoint_offered``
announces through a ``SamplingSession`` of its own (``source``), as the viewer does. Each run of the job writes one trajectory per
cell into ``RUN/samples/compare_<time>/`` (beside us when the run is read-only), so a
cell of the figure can be opened in the viewer.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from psygnal import Signal

from studio.core import samplers as _samplers  # noqa: F401 - registers the samplers
from studio.core.errors import StudioError
from studio.core.methods.base import sampler_family_of
from studio.core.registry import SAMPLERS
from studio.engine import compare
from studio.engine.events import CompareRow, Finished
from studio.engine.runs import RunDir, RunError

from .jobs import JobDriver
from .sampling import SamplingSession
from .state import AppState


class CompareSession:
    """Signals: ``run_changed(RunDir | None)``, ``checkpoints_changed(list[Path])``,
    ``row_added(CompareRow)`` (a cell finished), ``cleared()`` (a new job started: the
    table is empty again). ``driver`` runs the job; ``rows`` and ``cells`` (the
    ``CompareRow`` events) hold the table so far."""

    run_changed = Signal(object)
    checkpoints_changed = Signal(list)
    row_added = Signal(object)
    cleared = Signal()

    def __init__(self, state: AppState):
        self.state = state
        # the run and its checkpoints, followed exactly as the viewer's session follows them
        self.source = SamplingSession(state)
        self.source.run_changed.connect(self.run_changed.emit)
        self.source.checkpoints_changed.connect(self.checkpoints_changed.emit)
        self.cells: list[CompareRow] = []
        self.cancelled = False
        self.driver = JobDriver()
        self.driver.events.connect(self._on_events)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [c.row for c in self.cells]

    # --- the run ---------------------------------------------------------------------------
    @property
    def run(self) -> RunDir | None:
        return self.source.run

    @property
    def checkpoints(self) -> list[Path]:
        return self.source.checkpoints

    def open(self, path: str | Path | None) -> RunDir | None:
        """Compare samplers on this run (None, or a folder that is not a run: none)."""
        return self.source.open(path)

    def refresh_checkpoints(self) -> bool:
        return self.source.refresh_checkpoints()

    def family(self) -> str | None:
        return None if self.run is None else str(self.run.config.method.get("name"))

    def samplers(self) -> list[str]:
        """Registered samplers that serve the run's family, in registry order."""
        family = self.family()
        if family is None:
            return []
        family = sampler_family_of(family)  # a plugin method may be sampled as another family
        return [name for name in SAMPLERS.names() if family in getattr(SAMPLERS.get(name), "families", (family,))]

    def trajectory_dir(self) -> Path:
        """A new folder name for a job's trajectories (the job creates it once its
        arguments passed): in the run's samples/, or a temporary one for a read-only run."""
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"
        base = self.run.samples_dir if self.run.samples_dir.is_dir() else self.run.path
        if os.access(base, os.W_OK):
            return self.run.samples_dir / f"compare_{stamp}"
        return Path(tempfile.gettempdir()) / f"studio-compare-{stamp}"

    # --- the job ----------------------------------------------------------------------------
    def start(self, samplers: list[str], nfe_budgets: list[int], n: int | None = None, seed: int = 0,
              checkpoint_path: str | Path | None = None, checkpoint: str = "ema") -> Path:
        """Start the comparison (bad input raises a ``StudioError`` here, before any
        thread); returns the folder the cells' trajectories go to."""
        if self.run is None:
            raise RunError("Open a run first (File > Open run).")
        self.refresh_checkpoints()
        if not self.checkpoints:
            raise RunError(f"Run {self.run.path} has no checkpoint in {self.run.checkpoint_dir}; train it first.")
        run_dir, folder = self.run.path, self.trajectory_dir()

        def factory(control):
            return compare.compare_samplers(run_dir, samplers, nfe_budgets, n=n, seed=seed, checkpoint=checkpoint,
                                            checkpoint_path=checkpoint_path, trajectory_dir=folder, control=control)

        self.driver.start(factory, name="studio-compare")
        self.cells, self.cancelled = [], False
        self.cleared.emit()
        return folder

    def _on_events(self, events: list) -> None:
        for event in events:
            if isinstance(event, CompareRow):
                self.cells.append(event)
                self.row_added.emit(event)
            elif isinstance(event, Finished):
                self.cancelled = bool(event.result.get("cancelled"))

    def write_csv(self, path: str | Path) -> Path:
        if not self.cells:
            raise StudioError("the table is empty: run a comparison first")
        return compare.write_csv(self.rows, path)

    def poll(self) -> None:
        self.driver.poll()

    def shutdown(self, timeout: float = 10) -> None:
        self.driver.stop_and_wait(timeout)

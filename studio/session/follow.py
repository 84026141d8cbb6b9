"""Follow a run directory that another process writes (the CLI, torchrun, a copied
folder), read-only and without Qt.

``poll()`` (the owner's clock; at most every ``interval_s``) reads what is new in the
run: metrics rows (``RunDir.tail_metrics``, which re-reads only what was appended and
ignores a torn last line), the newest checkpoint and preview, and the status with
whether its writer still lives (``engine.run_lock.run_liveness``: a killed process
leaves "running" in status.json for ever; its lock goes with it). Nothing here writes to the run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from psygnal import Signal

from studio.core.errors import StudioError
from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir


class RunWatch:
    """Signals: ``rows(list)`` (new metrics rows), ``checkpoint_found(str)``,
    ``preview_found(Path)`` (the newest preview PNG), ``status_changed(dict)`` (the
    status with ``run_liveness`` under ``"follow"``: running | stopped | finished |
    failed | cancelled | unknown), ``failed(str)`` (the folder went
    away or a file is unreadable; following stops)."""

    rows = Signal(list)
    checkpoint_found = Signal(str)
    preview_found = Signal(object)
    status_changed = Signal(dict)
    failed = Signal(str)

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.run: RunDir | None = None
        self.active = False
        self.status: dict[str, Any] = {}
        self._since = -1
        self._checkpoint: Path | None = None
        self._preview: Path | None = None
        self._at = -float("inf")

    def follow(self, path: str | Path) -> RunDir:
        """Start following; a ``StudioError`` names the folder when it is not a run. The
        first ``poll`` (done here) delivers everything the run holds so far."""
        run = RunDir(path).require()
        run.config  # a bad config.toml is named now  # noqa: B018
        self.run, self.active, self.status = run, True, {}
        self._since, self._checkpoint, self._preview = -1, None, None
        self.poll(force=True)
        return run

    def stop(self) -> None:
        self.active = False

    def poll(self, force: bool = False) -> None:
        run = self.run
        now = time.monotonic()
        if run is None or not self.active or (not force and now - self._at < self.interval_s):
            return
        self._at = now
        try:
            rows = run.tail_metrics(self._since)
            if rows:
                self._since = rows[-1]["step"]
                self.rows.emit(rows)
            checkpoint = run.latest_checkpoint()
            if checkpoint is not None and checkpoint != self._checkpoint:
                self._checkpoint = checkpoint
                self.checkpoint_found.emit(str(checkpoint))
            previews = run.previews()
            if previews and previews[-1] != self._preview:
                self._preview = previews[-1]
                self.preview_found.emit(previews[-1])
        except (OSError, ValueError, StudioError) as e:
            self.stop()
            self.failed.emit(f"stopped following {run.path}: {e}")
            return
        status = run.status()
        status = {**status, "follow": run_liveness(run.path)}
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)

"""Follow a run directory that another process writes (a CLI or cluster run), read-only.

A QTimer polls ``RunDir``: new metrics rows (``tail_metrics``, which re-reads only what
was appended and ignores a torn last line), new checkpoints and previews, and the
status. Nothing here writes to the run. The panel shows what this finds exactly as it
shows its own job's events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.errors import StudioError
from studio.core.schedules import make_schedule
from studio.engine.checkpoint import load_checkpoint
from studio.engine.config import default_schedule
from studio.engine.runs import RunDir

from .training_buffers import TrainingHistory


def schedule_curve(config: dict[str, Any], checkpoint: str | Path | None = None, n: int = 256):
    """(t, log-SNR) of a run's schedule; a learned one with its weights from
    ``checkpoint`` (only the method's few tensors are read)."""
    section = dict(config.get("schedule", {}))
    family = section.pop("family", default_schedule(config.get("method", {}).get("name", "ddpm")))
    schedule = make_schedule(family, **section)
    if schedule.learned and checkpoint is not None:
        state = load_checkpoint(checkpoint, parts=("method",)).get("method", {})
        prefix = "schedule."
        schedule.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    with torch.no_grad():
        lam = schedule.log_snr(t).double().numpy()
    return t.numpy(), np.clip(lam, -30.0, 30.0)


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


class RunFollower(QObject):
    """``follow(path)`` starts polling; signals: ``status_changed(dict)``,
    ``checkpoint_found(str)``, ``preview_found(ndarray)`` (the newest preview PNG as
    uint8 (H, W, 3)), ``failed(str)`` (the folder went away or a file is unreadable)."""

    status_changed = Signal(dict)
    checkpoint_found = Signal(str)
    preview_found = Signal(object)
    failed = Signal(str)

    def __init__(self, history: TrainingHistory, interval_ms: int = 500, parent: QObject | None = None):
        super().__init__(parent)
        self.history = history
        self.run: RunDir | None = None
        self.batch_size = 1
        self._since = -1
        self._checkpoint: Path | None = None
        self._preview: Path | None = None
        self._status: dict[str, Any] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def follow(self, path: str | Path) -> RunDir:
        """Load what the run holds so far and keep following it; a ``StudioError``
        names the folder when it is not a run."""
        run = RunDir(path).require()
        config = run.config
        self.stop()
        self.run = run
        self.batch_size = int(config.train.get("batch_size", 1))
        self._since, self._checkpoint, self._preview, self._status = -1, None, None, {}
        self.history.clear(int(config.train.get("steps", 0)), int(config.train.get("log_every", 1)))
        try:
            self.history.set_schedule(*schedule_curve(config.to_dict()))
        except (StudioError, RuntimeError, TypeError, ValueError):  # a plugin's schedule not loaded here
            self.history.set_schedule(None, None)
        self.poll()
        self._timer.start()
        return run

    def stop(self) -> None:
        self._timer.stop()

    def poll(self) -> None:
        run = self.run
        if run is None:
            return
        try:
            rows = run.tail_metrics(self._since)
            if rows:
                self.history.add_rows(rows, self.batch_size)
                self._since = rows[-1]["step"]
            checkpoint = run.latest_checkpoint()
            if checkpoint is not None and checkpoint != self._checkpoint:
                self._checkpoint = checkpoint
                self.checkpoint_found.emit(str(checkpoint))
            previews = run.previews()
            if previews and previews[-1] != self._preview:
                self._preview = previews[-1]
                self.preview_found.emit(read_png(previews[-1]))
        except (OSError, ValueError, StudioError) as e:
            self.stop()
            self.failed.emit(f"stopped following {run.path}: {e}")
            return
        status = run.status()
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)

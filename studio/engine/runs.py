"""A run directory: everything a run needs to be resumed, sampled and opened by the app,
on this machine or copied from another (docs/DESIGN.md 3).

    config.toml          the resolved config (every default written out)
    data.json            shape, kind and raw-scale transform of the data (for sampling
                         without reloading it)
    metrics.jsonl        one JSON row per training step, appended in batches
    status.json          state (running | finished | failed | cancelled), step, message
    checkpoints/step_00001000.safetensors  (the step, 8 digits)
    previews/step_00001000.png
    samples/             outputs of ``sample`` unless told otherwise

Readers are safe while a training process writes: a torn last line of the metrics is
ignored until it is complete, every other file appears by rename.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.data import Dataset
from ..core.errors import StudioError
from .atomic import atomic_path, write_text
from .checkpoint import CheckpointError, load_checkpoint
from .config import Config, build_model, load_config, schedule_from_section

CKPT_RE = re.compile(r"^step_(\d+)\.safetensors$")


class RunError(StudioError):
    """A folder is not a usable run directory."""


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._rows: list[dict[str, Any]] = []
        self._pos = 0
        self._ino: int | None = None
        # status writes of the trainer and of its heartbeat thread (engine.run_lock) never interleave
        self._status_lock = threading.Lock()
        self._written: dict[str, Any] | None = None

    # --- layout ------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def preview_dir(self) -> Path:
        return self.path / "previews"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> "RunDir":
        if not self.path.is_dir():
            raise RunError(f"run directory {self.path} does not exist")
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a run directory (no config.toml)")
        return self

    # --- config and data info ----------------------------------------------------------------
    @property
    def config(self) -> Config:
        return load_config(self.require().config_path)

    def data_info(self) -> Dataset:
        """An empty Dataset carrying the data's shape, kind and raw-scale transform, so
        ``to_raw`` / ``to_uint8`` work on samples without reloading the data."""
        path = self.path / "data.json"
        if not path.is_file():
            raise RunError(f"run directory {self.path} lacks data.json")
        try:
            d = json.loads(path.read_text())
            return Dataset(
                d["name"],
                torch.empty((0, *d["shape"])),
                d["kind"],
                torch.tensor(d["shift"], dtype=torch.float32),
                torch.tensor(d["scale"], dtype=torch.float32),
                d.get("meta", {}),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RunError(f"{path} is not valid ({type(exc).__name__}: {exc})") from None

    def write_data_info(self, dataset: Dataset) -> None:
        meta = {k: v for k, v in dataset.meta.items() if isinstance(v, (str, int, float, bool))}
        info = {
            "name": dataset.name,
            "kind": dataset.kind,
            "shape": list(dataset.shape),
            "shift": dataset.shift.tolist(),
            "scale": dataset.scale.tolist(),
            "count": len(dataset),
            "meta": meta,
        }
        write_text(self.path / "data.json", json.dumps(info, indent=1))

    # --- status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def write_status(self, state: str, step: int, **extra: Any) -> None:
        """``state``, ``step`` and who wrote it when: ``host``, ``pid``, ``time`` (the
        heartbeat a reader on another machine judges liveness by, engine.run_lock)."""
        status = {"state": state, "step": step, "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **extra}
        with self._status_lock:
            write_text(self.path / "status.json", json.dumps(status))
            self._written = status

    def beat(self) -> bool:
        """The writer's heartbeat: the status this object last wrote, again with the time
        now, while it says running (never over a final state)."""
        with self._status_lock:
            status = self._written
            if status is None or status.get("state") != "running":
                return False
            status = {**status, "time": time.time()}
            write_text(self.path / "status.json", json.dumps(status))
            self._written = status
        return True

    # --- schedule ----------------------------------------------------------------------------
    def schedule(self, checkpoint: str | Path | None = None):
        """The run's schedule; a learned one with its weights as of ``checkpoint`` (a
        path; only the method's few tensors are read), else as configured."""
        cfg = self.config
        schedule = schedule_from_section(cfg.schedule, cfg.method.get("name", "ddpm"))
        if schedule.learned and checkpoint is not None:
            state = load_checkpoint(checkpoint, parts=("method",)).get("method", {})
            prefix = "schedule."
            schedule.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        return schedule

    def schedule_curve(self, checkpoint: str | Path | None = None, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(t, log-SNR) of :meth:`schedule` at ``n`` times in [0, 1], log-SNR clamped as
        the networks clamp it (``clamp_log_snr``)."""
        return schedule_curve(self.schedule(checkpoint), n)

    # --- metrics --------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """Every complete row so far (re-reads only what was appended since last time)."""
        self._read_new_rows()
        return list(self._rows)

    def tail_metrics(self, since: int = -1) -> list[dict[str, Any]]:
        """Rows with ``step`` > ``since``."""
        self._read_new_rows()
        rows = self._rows
        lo = len(rows)
        while lo > 0 and rows[lo - 1]["step"] > since:  # rows are in step order
            lo -= 1
        return rows[lo:]

    def _read_new_rows(self) -> None:
        try:
            st = os.stat(self.metrics_path)
        except FileNotFoundError:
            self._rows, self._pos, self._ino = [], 0, None
            return
        if st.st_ino != self._ino or st.st_size < self._pos:  # replaced (a resume truncated it)
            self._rows, self._pos, self._ino = [], 0, st.st_ino
        if st.st_size == self._pos:
            return
        with open(self.metrics_path, "rb") as f:
            f.seek(self._pos)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # a torn last line waits for its end
        for line in chunk[:end].splitlines():
            if line.strip():
                self._rows.append(json.loads(line))
        self._pos += end

    # --- checkpoints and previews -----------------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        if not self.checkpoint_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoint_dir.iterdir() if (m := CKPT_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def resolve_checkpoint(self, checkpoint: str | Path | None = None) -> Path:
        """A checkpoint path: the given file, or the latest of the run."""
        if checkpoint not in (None, "", "latest", "ema", "net"):
            path = Path(checkpoint)
            return path if path.is_absolute() or path.exists() else self.checkpoint_dir / path
        latest = self.require().latest_checkpoint()
        if latest is None:
            raise CheckpointError(f"run directory {self.path} has no checkpoint in {self.checkpoint_dir}")
        return latest

    def load_model(self, checkpoint: str | Path = "ema", path: str | Path | None = None):
        """(method, net, data_info) from a checkpoint: the EMA weights for ``"ema"``,
        the raw ones for ``"net"``; ``path`` picks a checkpoint (default the latest).
        The net is in eval mode on the CPU."""
        weights = "ema" if checkpoint == "ema" else "net"
        ckpt = self.resolve_checkpoint(path if path is not None else checkpoint)
        info = self.data_info()
        method, net = build_model(self.config, info.shape, info.kind)
        state = load_checkpoint(ckpt, parts=("net", "ema", "method", "step"))
        try:
            method.load_state_dict(state["method"])
            if weights == "ema" and "ema" in state:
                net.load_state_dict({k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")})
            else:
                net.load_state_dict(state["net"])
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {ckpt} does not match the run's config: {exc}") from None
        net.eval()
        return method, net, info

    def previews(self) -> list[Path]:
        if not self.preview_dir.is_dir():
            return []
        return sorted(self.preview_dir.glob("step_*.png"))


def schedule_curve(schedule, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(t, log-SNR) at ``n`` times in [0, 1]; +-inf and beyond-range values clamped to
    the networks' [-30, 30] (core.networks.embedding.clamp_log_snr, the one clamp)."""
    from ..core.networks.embedding import clamp_log_snr

    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    with torch.no_grad():
        lam = clamp_log_snr(schedule.log_snr(t).double()).double().numpy()
    return t.numpy(), lam


def writer_alive(status: dict[str, Any]) -> bool:
    """A ``status.json``'s writer still runs, judged from the status alone: state
    ``running`` and, when written on this host, its pid alive and not a zombie (from
    another host the status is trusted). ``engine.run_lock.run_liveness`` also asks the
    run's writer lock and the heartbeat; prefer it where the run directory is at hand."""
    if status.get("state") != "running":
        return False
    pid, host = status.get("pid"), status.get("host")
    if pid is None or (host is not None and host != socket.gethostname()):
        return True
    import psutil

    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):
        return False


class MetricsWriter:
    """Append rows to metrics.jsonl in batches: one write and one flush per batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open(self.path, "ab")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._file.write("".join(json.dumps(r) + "\n" for r in rows).encode())
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def truncate_metrics(path: str | Path, step: int) -> None:
    """Keep the rows up to ``step`` (a resume continues from there); by temp + rename."""
    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for line in path.read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # torn last line of a killed run
        if line.strip() and json.loads(line)["step"] <= step:
            keep.append(line)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(keep))

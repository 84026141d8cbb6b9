"""Runs side by side: an index of run directories and the curves to overlay them (no Qt).

An experiment is several runs that differ in a setting or two. :func:`index_runs` lists
every run directory under a root (and any opened elsewhere) as a :class:`RunSummary`:
its state, method, schedule, network, steps, last loss and the figures of its last
``evaluate``, from a few small reads per run (the config, the status, the end of
``metrics.jsonl``, ``evaluation.json``) so that many runs list quickly off the GUI
thread. :func:`differing_keys` finds the config keys whose values differ between runs
(the legend names those); :class:`RunCurves` holds one run's series for overlays
against step, wall time or samples seen, and follows a run still being written.
"""

from __future__ import annotations

import json
import math
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .atomic import write_text
from .run_lock import run_liveness
from .runs import RunDir

STATES = ("running", "finished", "stopped", "failed", "unknown")
EVALUATION = "evaluation.json"  # RUN/evaluation.json: the figures of the last `evaluate`
X_AXES = ("step", "time", "samples")  # what the curves can be drawn against
TAIL_BYTES = 1 << 16  # the end of metrics.jsonl read for a summary (a row is < 2 KB)
SKIP_DIRS = {"checkpoints", "previews", "samples", "tensorboard", "__pycache__", ".git"}
# keys named first in a legend: the ones that say which family a run belongs to
LEADING_KEYS = ("method.name", "schedule.family", "network.kind", "data.name", "data.source")


# ------------------------------------------------------------------------------------
# finding and summarising runs
# ------------------------------------------------------------------------------------


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "config.toml").is_file()


def find_runs(root: str | Path, max_depth: int = 4) -> list[Path]:
    """Every run directory (a folder holding ``config.toml``) under ``root``, ``root``
    itself included, at most ``max_depth`` folders down; a run's own sub-folders are not
    searched (runs do not nest). Sorted by path; a missing root is no runs."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if is_run_dir(folder):
            found.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name in SKIP_DIRS or entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    walk(Path(entry.path), depth + 1)
            except OSError:
                continue

    if root.is_dir():
        walk(root, 0)
    return found


def run_state(path: str | Path) -> str:
    """running | finished | stopped | failed | unknown (``engine.run_lock.run_liveness``,
    with a run the user stopped, "cancelled", shown as ``stopped`` like one whose writer
    died: both resume from their last checkpoint)."""
    state = run_liveness(path)
    return "stopped" if state == "cancelled" else state


def read_toml(path: Path) -> dict[str, Any]:
    """A run's config.toml as plain tables, without checking it against the registries
    (a run made with a plugin that is not loaded here still lists)."""
    return tomllib.loads(path.read_text(encoding="utf-8"))


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """``{"section.key": value}`` of a config's tables; lists become tuples (hashable,
    comparable)."""
    flat: dict[str, Any] = {}
    for section, table in config.items():
        if isinstance(table, dict):
            for key, value in table.items():
                flat[f"{section}.{key}"] = tuple(value) if isinstance(value, list) else value
        else:
            flat[section] = table
    return flat


def last_metrics_row(path: Path) -> dict[str, Any] | None:
    """The last complete row of a metrics.jsonl, reading only its end (a torn last line,
    still being written, is skipped)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            chunk = f.read()
    except OSError:
        return None
    end = chunk.rfind(b"\n")
    if end < 0:
        return None
    for line in reversed(chunk[:end].splitlines()):
        if line.strip():
            try:
                return json.loads(line)
            except ValueError:  # the first, partial line of the chunk
                return None
    return None


def save_evaluation(run_dir: str | Path, figures: dict[str, Any]) -> Path:
    """RUN/evaluation.json: ``figures`` of an ``evaluate`` with the checkpoint they were
    computed from and when (written atomically, so a reader never sees half of it)."""
    run = RunDir(run_dir)
    latest = run.latest_checkpoint()
    record = {**figures, "checkpoint": latest.name if latest else None, "evaluated_at": time.time()}
    path = run.path / EVALUATION
    write_text(path, json.dumps(record, default=str, indent=1))
    return path


def load_evaluation(run_dir: str | Path) -> dict[str, Any]:
    """The last ``evaluate`` figures of a run; {} when it was never evaluated."""
    try:
        record = json.loads((Path(run_dir) / EVALUATION).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table. ``config`` is flat (``"section.key"``); ``loss`` the
    smoothed loss of the last row; ``evaluation`` {} when never evaluated; ``error``
    says why a folder could not be read (the row still lists)."""

    path: Path
    name: str
    state: str
    method: str = ""
    schedule: str = ""
    network: str = ""
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    batch_size: int = 1
    evaluation: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    modified: float = 0.0
    error: str | None = None


def summarize_run(path: str | Path, name: str | None = None) -> RunSummary:
    """A run's summary from its small files; never raises for an unreadable run."""
    path = Path(path)
    name = name or path.name
    run = RunDir(path)
    status = run.status()
    state = run_state(path)
    try:
        raw = read_toml(run.config_path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return RunSummary(path, name, state, error=f"{run.config_path}: {exc}")
    flat = flat_config(raw)
    row = last_metrics_row(run.metrics_path) or {}
    loss = row.get("loss_smooth", row.get("loss"))
    try:
        modified = max(p.stat().st_mtime for p in (run.config_path, run.metrics_path, path / "status.json") if p.exists())
    except OSError:
        modified = 0.0
    method = str(flat.get("method.name", "ddpm"))
    return RunSummary(
        path=path,
        name=name,
        state=state,
        method=method,
        schedule=str(flat.get("schedule.family", "")),
        network=str(flat.get("network.kind", "")),
        step=int(row.get("step", status.get("step", 0)) or 0),
        total_steps=int(flat.get("train.steps", 0) or 0),
        loss=float(loss) if isinstance(loss, (int, float)) else None,
        batch_size=int(flat.get("train.batch_size", 1) or 1),
        evaluation=load_evaluation(path),
        config=flat,
        modified=modified,
    )


def index_runs(root: str | Path | None = None, extra: Iterable[str | Path] = (), max_depth: int = 4) -> list[RunSummary]:
    """Summaries of the runs under ``root`` and of the ``extra`` run folders (opened
    elsewhere), each once; names are paths relative to ``root`` where they lie under it."""
    paths: list[Path] = find_runs(root, max_depth) if root is not None else []
    seen = {p.resolve() for p in paths}
    for p in extra:
        p = Path(p)
        if is_run_dir(p) and p.resolve() not in seen:
            seen.add(p.resolve())
            paths.append(p)
    out = []
    for p in paths:
        try:
            name = str(p.resolve().relative_to(Path(root).resolve())) if root is not None else p.name
        except ValueError:
            name = p.name
        out.append(summarize_run(p, name if name != "." else p.name))
    return out


# ------------------------------------------------------------------------------------
# comparing configs
# ------------------------------------------------------------------------------------


def differing_keys(configs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The flat config keys whose values are not the same in every config (a key one
    config lacks counts as None there), in order: family keys first, then by section as
    the configs list them. Values per config, in the configs' order."""
    if len(configs) < 2:
        return {}
    keys: list[str] = []
    for cfg in configs:
        keys.extend(k for k in cfg if k not in keys)
    diff = {k: [cfg.get(k) for cfg in configs] for k in keys if len({_comparable(cfg.get(k)) for cfg in configs}) > 1}
    lead = [k for k in LEADING_KEYS if k in diff]
    return {k: diff[k] for k in lead + [k for k in diff if k not in lead]}


def _comparable(value: Any) -> Any:
    # 1 and 1.0 are the same setting; a tuple stays a tuple
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def legend_keys(keys: Sequence[str]) -> list[str]:
    """The differing keys worth naming in a legend: where a family key differs
    (``schedule.family``, ``method.name``, ...), the other keys of its section follow from
    it (a cosine schedule has no beta_start) and are left out."""
    led = {k.split(".", 1)[0] for k in keys if k in LEADING_KEYS}
    return [k for k in keys if k in LEADING_KEYS or k.split(".", 1)[0] not in led]


def run_label(config: dict[str, Any], keys: Sequence[str], fallback: str, most: int = 2) -> str:
    """A legend entry naming the differing settings of one run: ``family=cosine`` (the
    key's last part where that is unambiguous), at most ``most`` of them."""
    keys = legend_keys(keys)
    if not keys:
        return fallback
    tails = [k.rsplit(".", 1)[-1] for k in keys]
    parts = []
    for key, tail in list(zip(keys, tails))[:most]:
        shown = tail if tails.count(tail) == 1 else key
        parts.append(f"{shown}={format_value(config.get(key))}")
    if len(keys) > most:
        parts.append("...")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------
# curves
# ------------------------------------------------------------------------------------


def tensorboard_smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's scalar smoothing: an exponential moving average with ``weight``
    in [0, 1) on the previous value, debiased by ``1 - weight**k`` (the average starts at
    0) so the first points are not pulled towards zero; non-finite values are carried
    over unsmoothed and leave the average alone."""
    v = np.asarray(values, dtype=np.float64)
    out = np.empty_like(v)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight!r}: expected a number in [0, 1)")
    last, k = 0.0, 0
    for i, x in enumerate(v):
        if not math.isfinite(x):
            out[i] = x
            continue
        last = last * weight + (1.0 - weight) * x
        k += 1
        out[i] = last / (1.0 - weight**k)
    return out


def loss_by_level(log_snr: np.ndarray, loss: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, mean loss) of the (log-SNR, per-sample loss) pairs in each bin of
    ``edges`` (mean 0 where no pair fell); non-finite pairs are dropped."""
    lam = np.asarray(log_snr, dtype=np.float64)
    val = np.asarray(loss, dtype=np.float64)
    keep = np.isfinite(lam) & np.isfinite(val)
    counts = np.histogram(lam[keep], bins=edges)[0]
    sums = np.histogram(lam[keep], bins=edges, weights=val[keep])[0]
    return counts, np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


@dataclass(frozen=True)
class CurveData:
    """One run's series at one moment (arrays nobody changes afterwards, so a reader
    thread can hand them to the GUI). Per step: ``step``, ``loss``, ``grad_norm``,
    ``lr``, ``time`` (training seconds, interpolated between the rows that carry it: the
    last of each log interval) and ``samples`` seen (step x batch size); per log
    interval: ``rate_at`` (indices of those rows) and ``rate`` (samples per second);
    ``level_step``, ``level_log_snr``, ``level_loss``: the sampled (log-SNR, loss) pairs
    of the last few intervals (loss by noise level at the latest step)."""

    path: Path
    step: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    lr: np.ndarray
    time: np.ndarray
    samples: np.ndarray
    rate_at: np.ndarray
    rate: np.ndarray
    level_step: int
    level_log_snr: np.ndarray
    level_loss: np.ndarray

    def x(self, axis: str) -> np.ndarray:
        """The per-step x values for ``axis`` in ``X_AXES``."""
        if axis not in X_AXES:
            raise ValueError(f"x axis {axis!r}: expected one of {', '.join(X_AXES)}")
        return {"step": self.step, "time": self.time, "samples": self.samples}[axis]

    def throughput(self, axis: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """(x, samples per second), one point per log interval."""
        return self.x(axis)[self.rate_at], self.rate

    def levels(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bin centres, mean loss) by noise level at the latest step; bins where no
        pair fell are left out."""
        counts, means = loss_by_level(self.level_log_snr, self.level_loss, edges)
        centres = (edges[:-1] + edges[1:]) / 2
        return centres[counts > 0], means[counts > 0]


class RunCurves:
    """Reads one run's metrics.jsonl for overlays: :meth:`update` reads only the rows
    appended since the last call (a run still being written; a resume that truncated the
    file is re-read from the start), :meth:`data` builds the :class:`CurveData`. Used
    from one thread at a time (the runs session's reader)."""

    LEVEL_ROWS = 8  # log intervals whose sampled pairs make "loss by noise level now"

    def __init__(self, path: str | Path):
        self.run = RunDir(path)
        try:
            raw = read_toml(self.run.config_path)
        except (OSError, ValueError, UnicodeDecodeError):
            raw = {}
        self.batch_size = int(raw.get("train", {}).get("batch_size", 1) or 1)
        self.rows: list[dict[str, Any]] = []

    @property
    def path(self) -> Path:
        return self.run.path

    def update(self) -> bool:
        """Read what was appended; True when the rows changed."""
        rows = self.run.metrics()
        changed = len(rows) != len(self.rows) or bool(rows and self.rows and rows[-1] is not self.rows[-1])
        if changed:
            self.rows = rows
        return changed

    def data(self) -> CurveData:
        rows = self.rows

        def series(key: str) -> np.ndarray:
            return np.array([float(r.get(key, math.nan)) for r in rows], dtype=np.float64)

        step = series("step")
        timed = [(r["step"], r["time"]) for r in rows if isinstance(r.get("time"), (int, float))]
        if timed:
            xs, ts = zip(*timed)
            wall = np.interp(step, (0.0, *xs), (0.0, *ts))
        else:
            wall = np.full(len(rows), math.nan)
        rate_at = np.array([i for i, r in enumerate(rows) if isinstance(r.get("steps_per_s"), (int, float))], dtype=np.int64)
        rate = np.array([rows[i]["steps_per_s"] * self.batch_size for i in rate_at], dtype=np.float64)
        carried = [r for r in rows if r.get("level_log_snr")][-self.LEVEL_ROWS:]
        lam = np.concatenate([np.asarray(r["level_log_snr"], dtype=np.float64) for r in carried]) if carried else np.zeros(0)
        val = np.concatenate([np.asarray(r["level_loss"], dtype=np.float64) for r in carried]) if carried else np.zeros(0)
        return CurveData(
            path=self.path, step=step, loss=series("loss"), grad_norm=series("grad_norm"), lr=series("lr"),
            time=wall, samples=step * self.batch_size, rate_at=rate_at, rate=rate,
            level_step=int(carried[-1]["step"]) if carried else 0, level_log_snr=lam, level_loss=val,
        )

"""The typed events a job yields (docs/INTERFACES.md, engine).

Every array in an event is a numpy copy made on the worker thread, never a tensor or a
view of a buffer the worker keeps writing (docs/PITFALLS.md: a queued ndarray is shared, and
``tensor.numpy()`` aliases the worker's storage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class Started:
    job: str  # "train" | "sample" | "evaluate" | "compare"
    run_dir: str | None
    total_steps: int
    config: dict[str, Any]
    start_step: int = 0  # > 0 when a training run resumes


@dataclass(frozen=True)
class Progress:
    """Training progress, emitted every ``train.log_every`` steps (cheap; the GUI coalesces)."""

    step: int
    total: int
    loss: float  # mean loss of the last step
    loss_smooth: float  # exponential moving average of the step losses
    level_log_snr: np.ndarray  # noise levels drawn since the last Progress (float32)
    level_loss: np.ndarray  # their per-sample losses (float32)
    grad_norm: float
    lr: float
    samples_per_s: float
    eta_s: float
    memory: dict[str, Any] = field(default_factory=dict)  # kind "cuda" | "cpu", bytes / percent
    # a learned schedule as it trains: log-SNR at SCHEDULE_TIMES (about once a second), else None
    schedule_log_snr: np.ndarray | None = None


SCHEDULE_TIMES = np.linspace(0.0, 1.0, 129)  # where Progress.schedule_log_snr is evaluated


@dataclass(frozen=True)
class Preview:
    step: int
    images: np.ndarray | None  # uint8 (N, H, W, C)
    points: np.ndarray | None  # float32 (N, 2), raw data scale


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class SampleStep:
    """One step of a reverse process: ``x_t`` and ``x0_hat`` in the data's raw scale,
    ``eps_hat`` in the model's noise units (it is noise; shifting it makes no sense)."""

    index: int
    total: int
    t: float
    log_snr: float
    sigma: float
    x_t: np.ndarray
    x0_hat: np.ndarray
    eps_hat: np.ndarray


@dataclass(frozen=True)
class CompareRow:
    """One finished cell (sampler x NFE budget) of ``engine.compare.compare_samplers``:
    ``row`` holds its figures (``compare.COLUMNS``); a few of its samples for a preview
    (uint8 images or raw-scale points) and its trajectory file, when one was written."""

    cell: int
    total: int
    row: dict[str, Any]
    images: np.ndarray | None
    points: np.ndarray | None
    trajectory: str | None = None


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class Finished:
    step: int
    run_dir: str | None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    message: str
    step: int | None = None
    nan: bool = False  # a non-finite loss stopped training (the CLI exits with 3)
    checkpoint: str | None = None  # the last good checkpoint, where there is one


Event = Union[Started, Progress, Preview, CheckpointSaved, SampleStep, CompareRow, Log, Finished, Failed]

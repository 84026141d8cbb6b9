"""Helpers for tests that run the real CLI in subprocesses (kills, locks, resumes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

TINY = """
[data]
source = "toy"
name = "8gaussians"
n = 2000

[schedule]
family = "linear"
steps = 50

[method]
name = "ddpm"

[network]
kind = "mlp"
hidden = 32
depth = 1

[train]
steps = {steps}
batch_size = 64
lr = 2e-3
warmup = 10
log_every = 5
checkpoint_every = {checkpoint_every}
preview_every = 0
seed = 3
threads = 1
"""


def tiny_config(folder: Path, steps: int = 100_000, checkpoint_every: int = 50, name: str = "tiny.toml") -> Path:
    """A config that trains a 2-D toy quickly; many steps by default, so it runs until stopped."""
    path = Path(folder) / name
    path.write_text(TINY.format(steps=steps, checkpoint_every=checkpoint_every))
    return path


def cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition", proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def status(run: Path) -> dict:
    try:
        return json.loads((Path(run) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def metric_rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines() if x.strip()]

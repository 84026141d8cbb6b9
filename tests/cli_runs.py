"""Run directories made by the real CLI in a subprocess, for the tests of the runs index
(tests/engine/test_run_index.py) and the Runs panel (tests/gui/test_runs_panel.py):
tiny 2-D DDPM runs that differ in the settings a test names (the finished ones are
trained once a session, in the background: tests/background_runs.py)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.engine import procs
from tests.engine.procs import ENV, cli  # noqa: F401 - the one way the tests start the CLI


def write_config(folder: Path, name: str, family: str = "linear", steps: int = 40, lr: float = 2e-3,
                 checkpoint_every: int = 20, warmup: int = 5) -> Path:
    return procs.tiny_config(folder, steps, checkpoint_every, name=f"{name}.toml", **sections(family, lr, warmup))


def sections(family: str = "linear", lr: float = 2e-3, warmup: int = 5) -> dict:
    """How these runs differ from procs.TINY: 1000 points, the schedule family, lr and warm-up."""
    return {"data": {"n": 1000}, "schedule": {"family": family}, "train": {"lr": lr, "warmup": warmup}}


def run_cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return procs.run_cli(*args, timeout=timeout)  # runs here train and evaluate: a longer limit


def start(root: Path, name: str, **config) -> tuple[subprocess.Popen, Path]:
    """A run still being written: ``diffusion-studio train`` with a budget it will not
    reach, returned once its metrics have rows (the caller stops the process)."""
    cfg = write_config(root.parent, f"{root.name}_{name}", **{"steps": 1_000_000, "checkpoint_every": 50, **config})
    out = root / name
    proc = cli("train", cfg, "--out", out)
    wait_rows(out, 2, proc)
    return proc, out


def rows(run: Path) -> list[dict]:
    try:
        text = (run / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n") and line.strip()]


def wait_rows(run: Path, n: int, proc: subprocess.Popen | None = None, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = rows(run)
        if len(got) >= n:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"training ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"{run} did not reach {n} metrics rows in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.communicate(timeout=30)

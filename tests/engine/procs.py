"""Helpers for tests that run the real CLI in subprocesses (kills, locks, resumes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.engine.checkpoint import load_checkpoint
from studio.engine.config import load_config
from studio.engine.runs import RunDir

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


def tiny_toml(steps: int = 100_000, checkpoint_every: int = 50, **sections: dict) -> str:
    """TINY with its steps; each keyword names a section whose keys it sets (a key set
    to None is dropped), e.g. ``train={"lr": 1e-3}``."""
    text = TINY.format(steps=steps, checkpoint_every=checkpoint_every)
    if not sections:
        return text
    import tomllib

    import tomli_w

    raw = tomllib.loads(text)
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
        raw[section] = {k: v for k, v in raw[section].items() if v is not None}
    return tomli_w.dumps(raw)


def tiny_config(folder: Path, steps: int = 100_000, checkpoint_every: int = 50, name: str = "tiny.toml", **sections: dict) -> Path:
    """A config that trains a 2-D toy quickly; many steps by default, so it runs until
    stopped. ``sections``: see tiny_toml."""
    path = Path(folder) / name
    path.write_text(tiny_toml(steps, checkpoint_every, **sections))
    return path


def cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def side_by_side(commands: dict[str, tuple], logs: Path, timeout: float = 900) -> dict[str, str]:
    """Each ``diffusion-studio`` command line run at once (on 2 cores the second one is
    otherwise idle: pytest and each run use one thread); what each printed, once all
    exited with 0. Output goes to files in ``logs``: a full pipe would hold one process
    back until the other ended."""
    procs = {}
    for name, args in commands.items():
        out, err = (open(Path(logs) / f"{name}.{kind}", "w+") for kind in ("out", "err"))
        procs[name] = (subprocess.Popen([sys.executable, "-m", "studio", *map(str, args)], env=ENV, stdout=out, stderr=err,
                                        text=True), out, err)
    printed = {}
    for name, (proc, out, err) in procs.items():
        proc.wait(timeout=timeout)
        with out, err:
            out.seek(0)
            err.seek(0)
            printed[name] = out.read()
            assert proc.returncode == 0, (name, err.read())
    return printed


def wait_for(predicate, timeout: float = 60.0, what: str = "condition", proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def killed_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds unless it ends first (then it must have
    succeeded); True when it was killed."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    assert proc.returncode == 0, proc.stderr.read()
    return False


def last_step(run: Path | None) -> int:
    """The last step the run's metrics hold (one row per step from 1; a torn last line
    does not count)."""
    try:
        return (Path(run) / "metrics.jsonl").read_bytes().count(b"\n") if run is not None else 0
    except OSError:
        return 0


def kill_target(rng, run: Path | None, steps: int) -> int:
    """A seeded training step to kill a run at, past where it is now and within the first
    third of what is left: room for the kill loops' next rounds, so no kill lands after
    the job has finished (a kill timed in seconds alone did, on a faster machine)."""
    done = last_step(run)
    return rng.randint(done + 1, done + max(1, (steps - done) // 3))


def status(run: Path) -> dict:
    try:
        return json.loads((Path(run) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def metric_rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines() if x.strip()]


METRIC_KEYS = ("step", "loss", "loss_smooth", "grad_norm", "lr")  # those a resume must reproduce exactly


def metric_table(run: Path, upto: int | None = None) -> list[list[float]]:
    """The run's metrics rows (up to step ``upto``) as the values a resume must reproduce."""
    return [[r[k] for k in METRIC_KEYS] for r in metric_rows(run) if upto is None or r["step"] <= upto]


def assert_intact(run) -> int:
    """Every file of the run parses; returns the last complete metrics step."""
    if (run / "config.toml").exists():
        load_config(run / "config.toml")
    for name in ("status.json", "data.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    for ckpt in RunDir(run).checkpoints():
        state = load_checkpoint(ckpt)  # every tensor read: none truncated
        assert int(state["step"]) == int(ckpt.stem.split("_")[1])
    steps = []
    if (run / "metrics.jsonl").exists():
        data = (run / "metrics.jsonl").read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a torn last line is allowed (the resume drops it)
        steps = [json.loads(line)["step"] for line in complete.splitlines()]
    assert steps == list(range(1, len(steps) + 1)), "metrics rows not contiguous"
    return len(steps)

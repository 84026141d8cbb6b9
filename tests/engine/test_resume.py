"""A training process killed with SIGKILL resumes from its run directory and finishes
with exactly the metrics of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.engine.runs import RunDir

CONFIG = Path(__file__).resolve().parents[2] / "resources" / "configs" / "quick_toy.toml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", "train", *map(str, args)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.read_text().replace("checkpoint_every = 500", "checkpoint_every = 100").replace("preview_every = 500", "preview_every = 250"))
    steps = "900"
    whole, cut = tmp_path / "whole", tmp_path / "cut"

    # the uninterrupted reference trains side by side with the victim and its resume (on
    # 2 cores the second one is otherwise idle); one thread each, so its figures do not
    # depend on what runs beside it. Its output goes to a file: a full pipe would stall it.
    with open(tmp_path / "reference.err", "w+") as reference_err:
        reference = subprocess.Popen([sys.executable, "-m", "studio", "train", str(config), "--out", str(whole), "--steps", steps],
                                     env=ENV, stdout=subprocess.DEVNULL, stderr=reference_err)
        victim = train(config, "--out", cut, "--steps", steps)
        resumed = kill_and_resume(victim, cut)
        assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
        code = reference.wait(timeout=300)
        reference_err.seek(0)
        assert code == 0, reference_err.read()

    a, b = rows(whole), rows(cut)
    assert [r["step"] for r in b] == list(range(1, 901))  # no gap, no duplicate
    keys = ("step", "loss", "loss_smooth", "grad_norm", "lr")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert json.loads((cut / "status.json").read_text())["state"] == "finished"


def kill_and_resume(victim: subprocess.Popen, cut: Path) -> subprocess.Popen:
    """SIGKILL the victim once its step-300 checkpoint is written, then resume it."""
    deadline = time.time() + 120
    while time.time() < deadline and not (cut / "checkpoints" / "step_00000300.safetensors").exists():
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    killed_at = len(rows(cut))
    assert 300 <= killed_at < 900, "killed mid-run, after a checkpoint"
    assert int(RunDir(cut).latest_checkpoint().stem.split("_")[1]) >= 300
    return train(cut, "--resume")

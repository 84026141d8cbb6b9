"""Data-parallel training under torchrun: 2 CPU processes (gloo), a tiny budget; the run
directory is complete and the replicas' parameters agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.runs import RunDir

CONFIG = Path(__file__).resolve().parents[2] / "resources" / "configs" / "quick_toy.toml"


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "studio", "train", str(CONFIG), "--out", str(tmp_path / "run"), "--steps", "60", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunDir(tmp_path / "run")
    info = json.loads((run.path / "distributed.json").read_text())
    assert info["world"] == 2 and info["ranks_agree"], info
    assert [r["step"] for r in run.metrics()] == list(range(1, 61))
    assert run.status()["state"] == "finished" and run.latest_checkpoint().name == "step_00000060.safetensors"
    assert (run.path / "config.toml").is_file() and (run.path / "data.json").is_file()
    method, net, _ = run.load_model()
    assert sum(p.numel() for p in net.parameters()) > 0

"""``diffusion-studio compare`` through a real subprocess: the table on stdout, the CSV
with every column, the figure, and one-line errors for bad input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from PIL import Image

import studio
from studio.engine.compare import COLUMNS
from studio.engine.jobs import train_job

TINY = {
    "data": {"source": "toy", "name": "8gaussians", "n": 2000},
    "schedule": {"steps": 50},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 100, "batch_size": 128, "log_every": 50, "checkpoint_every": 100, "preview_every": 1000},
}


def run_cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_compare") / "run"
    for _ in train_job(TINY, path):
        pass
    return path


def test_compare_prints_the_table_and_writes_csv_and_plot(run, tmp_path):
    table, figure = tmp_path / "t.csv", tmp_path / "f.png"
    proc = run_cli("compare", run, "--samplers", "ancestral,ddim", "--nfe", "2,6", "--n", "128", "--seed", "3",
                   "--csv", table, "--plot", figure, "--trajectories", tmp_path / "traj")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["sampler", "budget", "steps", "nfe", "wall_s"] and "swd" in lines[0]
    assert [ln.split()[:4] for ln in lines[1:]] == [["ancestral", "2", "2", "2"], ["ancestral", "6", "6", "6"], ["ddim", "2", "2", "2"], ["ddim", "6", "6", "6"]]
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 4
    assert {r["studio_version"] for r in rows} == {studio.__version__} and len(rows[0]["checkpoint_sha256"]) == 64
    assert all(float(r["sliced_wasserstein"]) > 0 and r["seed"] == "3" for r in rows)
    assert Image.open(figure).size[0] > 400
    assert len(list((tmp_path / "traj").glob("compare_*.h5"))) == 4


@pytest.mark.parametrize(
    "args, words",
    [
        (["--samplers", "nosuch"], ["nosuch", "ddim"]),
        (["--nfe", "5,x"], ["--nfe", "5,x"]),
        (["--nfe", "0"], ["nfe = 0"]),
    ],
)
def test_compare_bad_input_is_one_line(run, args, words, capsys):
    # in process (cli.main is what the subprocess runs): an interpreter start costs ~10 s here
    from studio import cli

    assert cli.main(["compare", str(run), *args]) == cli.USAGE
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    for w in words:
        assert w in errors[0]

"""The diffusion-studio command through a real subprocess (docs/DESIGN.md 3): end to end on
a toy set and on digits, the schedule subcommand, and one-line errors for bad input
that leave the run directory untouched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def short_run(quick_toy_run) -> Path:
    """A toy run the CLI trained: quick_toy, trained in the background (tests/conftest.py)."""
    return quick_toy_run.path


# ----------------------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_toy_train_sample_evaluate(tmp_path, quick_toy_run):
    out = quick_toy_run.path  # `diffusion-studio train quick_toy.toml --out OUT`, exit code 0
    assert "ETA" in quick_toy_run.stderr  # the progress bar
    for name in ("config.toml", "data.json", "metrics.jsonl", "status.json"):
        assert (out / name).is_file()
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    assert len(list((out / "previews").glob("*.png"))) >= 1

    proc = run_cli("sample", out, "--n", "500", "--seed", "1", "--out", tmp_path / "s.npz", "--grid", tmp_path / "g.png",
                   "--gif", tmp_path / "a.gif", "--trajectory", tmp_path / "t.h5")
    assert proc.returncode == 0, proc.stderr
    samples = np.load(tmp_path / "s.npz")["samples"]
    assert samples.shape == (500, 2) and np.isfinite(samples).all()
    with Image.open(tmp_path / "g.png") as grid:  # points are exported as a plot with axes
        assert grid.size == (1200, 1200)
        pixels = np.asarray(grid.convert("RGB"))
    assert (pixels.std(axis=2) > 30).mean() > 1e-3  # coloured sample dots over the grey data
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames > 10
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f["x_t"].shape == (100, 500, 2) and f["x_t"].dtype == np.float16
        assert "config" in f.attrs and int(f["steps_written"][()]) == 100

    proc = run_cli("evaluate", out, "--json")
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    # well below the distance of the prior (noise) to the data; the held-out floor is ~0.02
    assert fig["sliced_wasserstein"] < 0.4 * fig["sliced_wasserstein_prior"], fig
    assert fig["sliced_wasserstein"] < 0.1, fig
    assert np.isfinite(fig["bits_per_dim"])


@pytest.mark.slow
def test_digits_train_sample_evaluate(tmp_path, quick_digits_run):
    out = quick_digits_run.path  # `diffusion-studio train quick_digits.toml --out OUT`, exit code 0
    proc = run_cli("sample", out, "--n", "64", "--grid", tmp_path / "g.png", "--strip", tmp_path / "strip.png")
    assert proc.returncode == 0, proc.stderr
    samples = np.load(out / "samples" / "samples.npz")["samples"]
    assert samples.shape == (64, 1, 8, 8)
    grid = Image.open(tmp_path / "g.png")
    assert "config" in grid.text and "seed" in grid.text
    # 64 samples: the figures below measured at 64 (seeds 0-2) and at the default 180
    # differ by less than a tenth of their margins; bits/dim does not depend on it
    proc = run_cli("evaluate", out, "--n", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    # digits: dark background, bright strokes; samples in [0, 1] with the data's statistics
    assert abs(fig["sample_mean"] - fig["reference_mean"]) < 0.08, fig
    assert 0.7 < fig["sample_std"] / fig["reference_std"] < 1.3, fig
    # a bound on the 8-bit scale well under the 8 bits/dim of uniform noise
    assert 0.5 < fig["bits_per_dim_8bit"] < 7.0, fig


# ----------------------------------------------------------------------------------
# the schedule command and help
# ----------------------------------------------------------------------------------


def test_schedule_prints_seed_facts_and_plots(tmp_path):
    proc = run_cli("schedule", "linear", "steps=1000", "--plot", tmp_path / "s.png")
    assert proc.returncode == 0, proc.stderr
    assert "N(0.0063528 x_0, 0.9999596 I)" in proc.stdout
    assert Image.open(tmp_path / "s.png").size[0] > 400
    proc = run_cli("schedule", "cosine", "steps=50", "--json")
    curves = json.loads(proc.stdout)["curves"]
    assert len(curves["beta"]) == 50 and curves["alpha_bar"][0] > curves["alpha_bar"][-1]


def test_help_documents_exit_codes():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for code in ("0", "1", "2", "3", "130"):
        assert f"  {code} " in proc.stdout


# ----------------------------------------------------------------------------------
# bad input: one line naming the culprit, non-zero exit, run directory untouched
# ----------------------------------------------------------------------------------

GOOD = (CONFIGS / "quick_toy.toml").read_text()


@pytest.mark.parametrize(
    "change, culprit",
    [
        (("[train]", "[train]\nstepz = 3"), "stepz"),
        (("steps = 1500", 'steps = "many"'), "steps"),
        (("beta_end = 0.2", "beta_end = 1.5"), "beta_end"),
        (('name = "8gaussians"', 'name = "circles"'), "circles"),
    ],
    ids=["unknown-key", "wrong-type", "beta-ge-1", "unknown-toy"],
)
def test_bad_config_names_the_key(tmp_path, short_run, change, culprit):
    before = tree_digest(short_run)
    cfg = write_config(tmp_path / "bad.toml", GOOD.replace(*change, 1))
    proc = run_cli("train", cfg, "--out", short_run)  # pointed at a real run: must not touch it
    assert proc.returncode == 2, proc.stderr
    assert culprit in one_line_error(proc)
    assert tree_digest(short_run) == before


def test_missing_data_file(tmp_path):
    cfg = write_config(tmp_path / "c.toml", '[data]\nsource = "array"\npath = "nowhere.npz"\n')
    proc = run_cli("train", cfg, "--out", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nowhere.npz" in one_line_error(proc)
    assert not (tmp_path / "run").exists()


def test_corrupt_image(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cfg = write_config(tmp_path / "c.toml", f'[data]\nsource = "folder"\npath = "{folder}"\nresolution = 8\n')
    proc = run_cli("train", cfg, "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert "broken.png" in one_line_error(proc)
    assert not (tmp_path / "run").exists()


def test_wrong_array_shape(tmp_path):
    np.savez(tmp_path / "a.npz", train=np.zeros((10, 2, 3, 4, 5), dtype=np.float32))
    cfg = write_config(tmp_path / "c.toml", f'[data]\nsource = "array"\npath = "{tmp_path / "a.npz"}"\nkey = "train"\n')
    proc = run_cli("train", cfg, "--out", tmp_path / "run")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "a.npz" in line and "(10, 2, 3, 4, 5)" in line


def test_missing_checkpoint(tmp_path, short_run):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(short_run, run)
    shutil.rmtree(run / "checkpoints")
    before = tree_digest(run)
    proc = run_cli("sample", run, "--n", "4")
    assert proc.returncode == 2
    assert "checkpoint" in one_line_error(proc)
    assert tree_digest(run) == before


@pytest.mark.slow
def test_truncated_checkpoint(tmp_path, short_run):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(short_run, run)
    ckpt = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    before = tree_digest(run)
    for args in (("sample", run, "--n", "4"), ("train", run, "--resume"), ("evaluate", run)):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert ckpt.name in one_line_error(proc)
        assert tree_digest(run) == before


def test_nan_loss_stops_with_exit_3_and_stays_resumable(tmp_path):
    cfg = write_config(
        tmp_path / "c.toml",
        GOOD.replace("lr = 2e-3", "lr = 1e12").replace("warmup = 50", "warmup = 0").replace("checkpoint_every = 500", "checkpoint_every = 1"),
    )
    proc = run_cli("train", cfg, "--out", tmp_path / "run")
    assert proc.returncode == 3, proc.stderr
    line = one_line_error(proc)
    assert "step" in line and "checkpoint" in line
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed"
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows)
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert ckpts and int(ckpts[-1].stem.split("_")[1]) == status["step"]

"""Faults at awkward moments, in-process where a fault must be injected: a full disk
(ENOSPC) while writing a checkpoint, a trajectory or an export; NaN in a batch mid-run;
cancel during sampling and during a branch. Each ends with one message, the previous
checkpoint intact, and a run that still samples and resumes."""

from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest
import torch

from studio import cli
from studio.engine.checkpoint import load_checkpoint
from studio.engine.control import JobControl
from studio.engine.events import CheckpointSaved, Failed, Finished, SampleStep
from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir
from studio.engine.sampling import sample_job
from studio.engine.trainer import Trainer, train_job
from studio.engine.trajectory import TrajectoryReader

from .procs import metric_rows, status, tiny_config


def disk_full(path="") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    run = folder / "run"
    events = list(train_job(tiny_config(folder, steps=40, checkpoint_every=20), run))
    assert isinstance(events[-1], Finished)
    return run


@pytest.mark.slow
def test_disk_full_on_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    import studio.engine.checkpoint as checkpoint

    real, calls = checkpoint.save_file, []

    def save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            with open(filename, "wb") as f:
                f.write(b"\0" * 1000)
            raise disk_full(filename)
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    run = tmp_path / "run"
    code = cli.main(["train", str(tiny_config(tmp_path, steps=100, checkpoint_every=20)), "--out", str(run)])
    err = capsys.readouterr().err
    assert code == cli.FAILURE and "Traceback" not in err
    (line,) = error_lines(err)
    assert "No space left on device" in line and "at step 40" in line
    assert status(run)["state"] == "failed" and "No space left" in status(run)["message"]
    (kept,) = RunDir(run).checkpoints()
    assert kept.name == "step_00000020.safetensors" and load_checkpoint(kept)["step"] == 20
    assert not list(run.rglob(".*.tmp.*")), "the half-written temporary was left behind"
    monkeypatch.setattr(checkpoint, "save_file", real)  # space again: the run resumes from step 20
    assert cli.main(["train", str(run), "--resume"]) == cli.OK
    assert [r["step"] for r in metric_rows(run)] == list(range(1, 101)) and run_liveness(run) == "finished"


def test_disk_full_on_trajectory(trained, tmp_path, monkeypatch, capsys):
    from studio.engine import trajectory

    real, before = trajectory.TrajectoryWriter.append, digest(trained / "checkpoints")

    def append(self, *args, **kwargs):
        if self.written == 5:
            raise disk_full(self.path)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(trajectory.TrajectoryWriter, "append", append)
    path = tmp_path / "traj.h5"
    code = cli.main(["sample", str(trained), "--n", "8", "--steps", "20", "--trajectory", str(path), "--out", str(tmp_path / "s.npz")])
    err = capsys.readouterr().err
    (line,) = error_lines(err)
    assert code == cli.FAILURE and "No space left on device" in line and "traj.h5" in line and "Traceback" not in err
    assert not (tmp_path / "s.npz").exists()
    with TrajectoryReader(path) as r:  # cut short, marked so, and the steps written read back
        assert len(r) == 5 < r.steps and r.step(4)["index"] == 4
    assert digest(trained / "checkpoints") == before


def test_disk_full_on_export_keeps_the_previous_file(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image

    grid = tmp_path / "grid.png"
    assert cli.main(["sample", str(trained), "--n", "8", "--steps", "10", "--grid", str(grid), "--out", str(tmp_path / "a.npz")]) == 0
    before = grid.read_bytes()
    real = Image.Image.save

    def save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise disk_full(fp)

    monkeypatch.setattr(Image.Image, "save", save)
    code = cli.main(["sample", str(trained), "--n", "8", "--steps", "10", "--seed", "3", "--grid", str(grid), "--out", str(tmp_path / "b.npz")])
    monkeypatch.setattr(Image.Image, "save", real)
    (line,) = error_lines(capsys.readouterr().err)
    assert code == cli.FAILURE and "No space left on device" in line
    assert grid.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "grid.png"]


@pytest.mark.slow
def test_nan_injected_into_a_batch_mid_run(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(tmp_path, steps=400, checkpoint_every=20), run)
    events = []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.step == 40:
            trainer.data[7] = float("nan")  # one poisoned item: the first batch that holds it
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.nan and 40 < failed.step <= 40 + len(trainer.data) // 64 + 1
    assert status(run)["state"] == "failed" and "non-finite" in status(run)["message"]
    assert all(np.isfinite(r["loss"]) for r in metric_rows(run))
    last = RunDir(run).latest_checkpoint()
    state = load_checkpoint(last)
    assert state["step"] < failed.step and all(torch.isfinite(v).all() for v in state["net"].values())
    assert isinstance(list(train_job(None, run, resume=True))[-1], Finished)  # clean data again: it finishes
    assert run_liveness(run) == "finished"


def test_cancel_during_sampling_and_during_a_branch(trained, tmp_path):
    main, branch = tmp_path / "main.h5", tmp_path / "branch.h5"
    control = JobControl()
    steps = []
    for event in sample_job(trained, steps=30, n=16, trajectory=main, control=control):
        if isinstance(event, SampleStep):
            steps.append(event)
            if len(steps) == 12:
                control.cancel()
    assert isinstance(event, Finished) and event.result["cancelled"] and len(steps) == 12
    with TrajectoryReader(main) as r:
        assert len(r) == 12 < r.steps
        x_t, t = r.step(8)["x_t"], r.step(8)["t"]
    before = main.read_bytes()
    control, seen = JobControl(), 0
    for event in sample_job(trained, steps=30 - 8, n=16, x_init=x_t, t_start=t, trajectory=branch, control=control):
        if isinstance(event, SampleStep):
            seen += 1
            if seen == 3:
                control.cancel()
    assert isinstance(event, Finished) and event.result["cancelled"]
    with TrajectoryReader(branch) as r:
        assert len(r) == 3 and abs(r.step(0)["t"] - t) < 1e-9
    assert main.read_bytes() == before  # the branch never touches the run it came from
    finished = list(sample_job(trained, steps=10, n=4))[-1]  # and the run samples on
    assert isinstance(finished, Finished) and np.isfinite(finished.result["samples"]).all()

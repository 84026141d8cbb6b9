"""Job factories check their input at the call (nothing written); a training job that
dies of any exception leaves status failed with the message and resumes in-process; the
run directory says its schedule at a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from studio.core.errors import ConfigError, StudioError
from studio.engine.config import schedule_from_section
from studio.engine.events import CheckpointSaved, Failed, Finished, Started
from studio.engine.jobs import sample_job, train_job
from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir
from studio.engine.trainer import Trainer

TINY = {
    "data": {"source": "toy", "name": "moons", "n": 1000},
    "schedule": {"steps": 40},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 40, "batch_size": 64, "log_every": 5, "checkpoint_every": 20, "preview_every": 0},
    "sample": {"steps": 10, "n": 8},
}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"train": {**TINY["train"], "lr": -1.0}}, ["[train] lr", "-1.0"]),
        ({"schedule": {"steps": 40, "beta_end": 1.0}}, ["[schedule]", "beta_end"]),
        ({"train": {**TINY["train"], "colour": 3}}, ["[train] colour"]),
    ],
)
def test_train_job_raises_at_the_call_and_writes_nothing(tmp_path, change, words):
    out = tmp_path / "run"
    with pytest.raises(StudioError) as info:
        train_job({**TINY, **change}, out)  # no next(): the call itself raises
    for w in words:
        assert w in str(info.value)
    assert not out.exists()


def test_sample_job_raises_at_the_call(tmp_path):
    with pytest.raises(StudioError, match="does not exist"):
        sample_job(tmp_path / "nowhere")
    run = tmp_path / "run"
    for _ in train_job(TINY, run):
        pass
    with pytest.raises(ConfigError, match="steps = 0"):
        sample_job(run, steps=0)
    with pytest.raises(StudioError, match="nope"):
        sample_job(run, sampler="nope")
    assert not (run / "samples").exists()


class Boom(RuntimeError):
    pass


def test_any_exception_marks_the_run_failed_and_it_resumes_in_process(tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = Trainer(TINY, out)
    calls = {"n": 0}
    forward = trainer.objective.forward

    def failing(x, g):  # the network dies at the 30th step (after the step-20 checkpoint)
        calls["n"] += 1
        if calls["n"] == 30:
            raise Boom("the network fell over")
        return forward(x, g)

    trainer.objective.forward = failing
    events = list(trainer.run())
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and "Boom: the network fell over" in failed[0].message and failed[0].step == 29
    assert failed[0].checkpoint.endswith("step_00000020.safetensors")
    status = RunDir(out).status()
    assert status["state"] == "failed" and "the network fell over" in status["message"] and status["step"] == 29
    assert run_liveness(out) == "failed"
    resumed = list(train_job(None, out, resume=True))
    started = next(e for e in resumed if isinstance(e, Started))
    assert started.start_step == 20
    assert isinstance(resumed[-1], Finished) and resumed[-1].step == 40
    assert RunDir(out).status()["state"] == "finished"
    assert [r["step"] for r in RunDir(out).metrics()] == list(range(1, 41))


def test_a_closed_job_says_cancelled(tmp_path):
    out = tmp_path / "run"
    job = train_job(TINY, out)
    for event in job:
        if isinstance(event, CheckpointSaved):
            break
    job.close()
    assert RunDir(out).status()["state"] == "cancelled"


def test_schedule_from_section_and_the_run_schedule_at_a_checkpoint(tmp_path):
    s = schedule_from_section({"steps": 40}, "ddpm")
    assert s.steps == 40 and s.to_dict()["family"] == "linear"
    with pytest.raises(StudioError, match=r"\[schedule\]"):
        schedule_from_section({"family": "linear", "beta_end": 2.0})
    out = tmp_path / "vdm"
    cfg = {**TINY, "method": {"name": "vdm"}, "schedule": {"family": "vdm_learned"}}
    cfg["train"] = {**TINY["train"], "lr": 5e-2}
    for _ in train_job(cfg, out):
        pass
    run = RunDir(out)
    t, initial = run.schedule_curve()
    _, trained = run.schedule_curve(run.latest_checkpoint())
    assert t.shape == initial.shape == (256,) and np.all(np.abs(trained) <= 30.0)
    assert not np.allclose(initial, trained)  # the learned schedule moved, and the checkpoint says so
    lam_end = run.schedule(run.latest_checkpoint()).log_snr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert np.allclose(lam_end.detach().numpy()[[0, 1]], trained[[0, -1]], atol=1e-3)

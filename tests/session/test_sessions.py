"""The session layer headless (no Qt): the run hand-off from a training job to the
sampling session, errors at start, following a run whose writer died and resuming it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from studio.core.errors import StudioError
from studio.engine.config import parse_config
from studio.engine.events import Failed, Finished
from studio.engine.jobs import train_job
from studio.engine.runs import RunDir
from studio.engine.trajectory import TrajectoryReader
from studio.session import AppState, SamplingSession, TrainingSession
from studio.session.jobs import poll_until

from .failing import failing_network

TINY = {
    "data": {"source": "toy", "name": "moons", "n": 1000},
    "schedule": {"steps": 30},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 300, "batch_size": 64, "log_every": 10, "checkpoint_every": 60, "preview_every": 0},
    "sample": {"steps": 10, "n": 8},
}


def test_a_training_run_is_handed_to_the_sampler_as_it_trains(tmp_path):
    state = AppState()
    training, sampling = TrainingSession(state), SamplingSession(state)
    announced, offered, opened = [], [], []
    state.run_dir_changed.connect(announced.append)
    state.checkpoint_offered.connect(offered.append)
    sampling.run_changed.connect(opened.append)
    out = tmp_path / "run"
    training.start(parse_config(TINY), out)
    assert training.mode == "training" and announced == []  # not before the job said Started
    # polled 20 ms apart, as the app's timer does: a loop spinning on poll() holds the GIL
    # against the training thread (measured: the first checkpoint after 109 s and 23
    # million polls; polled 10 ms apart, after 2.4 s and 32 polls)
    poll_until(training.poll, lambda: bool(offered) or not training.running, 120)
    assert announced == [out] and out.is_dir() and sampling.run is not None and sampling.run.path == out
    assert opened[-1] is sampling.run and len(sampling.checkpoints) >= 1
    training.pause()  # hold the job mid-run, so "while it is still training" is not a race
    assert training.running
    path = sampling.start_sampling({"sampler": "ancestral", "steps": 10, "n": 8, "seed": 0})
    assert sampling.main.wait(60) and isinstance(sampling.main.last_event, Finished)
    assert len(TrajectoryReader(path)) == 10 and RunDir(out).status()["state"] == "running"
    training.resume_job()
    assert training.wait(120) and isinstance(training.driver.last_event, Finished)
    assert training.mode == "idle" and training.latest_checkpoint.endswith("step_00000300.safetensors")
    assert sampling.checkpoints[-1].name == "step_00000300.safetensors"  # each new one was offered
    assert [p.name for p in offered][-1] == "step_00000300.safetensors" and len(offered) >= 2


@pytest.mark.parametrize("change, words", [
    ({"train": {"lr": -1.0}}, "[train] lr"),
    ({"schedule": {"beta_end": 1.0}}, "beta_end"),
])
def test_bad_values_raise_at_start_and_nothing_is_written(tmp_path, change, words):
    state = AppState()
    training = TrainingSession(state)
    cfg = {k: dict(v) for k, v in TINY.items()}
    for section, values in change.items():
        cfg[section].update(values)
    with pytest.raises(StudioError) as info:
        training.start(parse_config(cfg) if "lr" not in str(change) else _unchecked(cfg), tmp_path / "run")
    assert words in str(info.value)
    assert not (tmp_path / "run").exists() and training.mode == "idle" and not training.running
    training.start(parse_config(TINY), tmp_path / "good")  # and the session still works
    training.stop_and_wait(60)
    assert isinstance(training.driver.last_event, Finished)


def _unchecked(cfg):
    from studio.engine.config import Config

    return Config(**cfg)


def test_a_followed_run_whose_writer_died_shows_stopped_and_resumes_here(tmp_path):
    out = tmp_path / "run"
    job = train_job({**TINY, "train": {**TINY["train"], "steps": 120}}, out)
    for event in job:
        if getattr(event, "step", 0) == 60 and type(event).__name__ == "CheckpointSaved":
            break
    job.close()  # the writer lock goes as it goes with a killed process
    # the writer was SIGKILLed: its status stays "running" with a pid that is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = RunDir(out).status()
    (out / "status.json").write_text(json.dumps({**status, "state": "running", "pid": dead.pid}))
    state = AppState()
    training, sampling = TrainingSession(state), SamplingSession(state)
    seen = []
    training.status_changed.connect(seen.append)
    state.set_run_dir(out)  # "Open run" anywhere opens it everywhere
    assert training.mode == "following" and sampling.run.path == out
    assert seen[-1]["follow"] == "stopped" and training.can_resume and not training.live_elsewhere
    assert state.checkpoint is not None and state.checkpoint.name == "step_00000060.safetensors"
    training.resume(steps=120)
    assert training.wait(120)
    last = training.driver.last_event
    assert isinstance(last, Finished) and last.step == 120, getattr(last, "message", last)
    assert RunDir(out).status()["state"] == "finished"


def test_a_live_writer_elsewhere_cannot_be_resumed(tmp_path):
    out = tmp_path / "run"
    for _ in train_job({**TINY, "train": {**TINY["train"], "steps": 60}}, out):
        pass
    hold = f"import fcntl, time; f = open({str(out / 'writer.lock')!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX); print(1, flush=True); time.sleep(30)"
    alive = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE)
    try:
        assert alive.stdout.readline().strip() == b"1"  # it holds the writer lock now
        status = RunDir(out).status()
        (out / "status.json").write_text(json.dumps({**status, "state": "running", "pid": alive.pid}))
        training = TrainingSession(AppState())
        training.follow(out)
        assert training.live_elsewhere and not training.can_resume
        assert training.watch.status["follow"] == "running"
        with pytest.raises(StudioError, match="another process"):
            training.resume(steps=90)
    finally:
        alive.kill()
        alive.wait()


def test_a_job_that_raises_mid_run_is_failed_and_resumes_in_the_same_session(tmp_path):
    state = AppState()
    training = TrainingSession(state)
    out = tmp_path / "run"
    cfg = {**TINY, "network": {"kind": "failing_mlp"}}
    with failing_network(fail_at=100) as plan:  # after the step-60 checkpoint
        training.start(parse_config(cfg), out)
        assert training.wait(120)
        last = training.driver.last_event
        assert isinstance(last, Failed) and "the network fell over" in last.message
        assert "the network fell over" in training.last_error and training.mode == "idle"
        status = RunDir(out).status()
        assert status["state"] == "failed" and "the network fell over" in status["message"]
        assert training.can_resume
        training.resume()
        assert training.wait(120)
        assert isinstance(training.driver.last_event, Finished) and training.driver.last_event.step == 300
        assert plan["calls"] > 100
    assert RunDir(out).status()["state"] == "finished"

"""Config validation, the control and runner, and the training and sampling jobs in
process: events, pause/resume/cancel, copies never aliasing worker buffers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from studio.core.errors import ConfigError, ScheduleError
from studio.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from studio.engine.config import build, parse_config, resolve
from studio.engine.control import Cancelled, JobControl
from studio.engine.events import CheckpointSaved, Failed, Finished, Preview, Progress, SampleStep, Started
from studio.engine.runner import ThreadRunner
from studio.engine.runs import RunDir
from studio.engine.jobs import sample_job, train_job

TINY = {
    "data": {"source": "toy", "name": "moons", "n": 2000},
    "schedule": {"steps": 50},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 60, "batch_size": 128, "log_every": 5, "checkpoint_every": 30, "preview_every": 30, "preview_steps": 5, "preview_n": 16},
    "sample": {"steps": 20, "n": 16},
}


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"trian": {}}, ["[trian]", "train"]),
        ({"train": {"lr": "fast"}}, ["[train] lr", "'fast'"]),
        ({"train": {"device": "tpu"}}, ["[train] device", "cpu, cuda"]),
        ({"method": {"name": "gan"}}, ["[method] name", "ddpm"]),
        ({"method": {"name": "ddpm", "foo": 1}}, ["[method] foo", "prediction"]),
        ({"network": {"kind": "mlp", "hidden": 1.5}}, ["[network] hidden", "integer"]),
        ({"sample": {"sampler": "ddim", "eta": "x"}}, ["[sample] eta"]),
        ({"sample": {"sampler": "ddim", "variance": "beta"}}, ["[sample] variance", "eta"]),
        ({"data": {"source": "digits", "path": 3}}, ["[data] path"]),
    ],
)
def test_config_errors_name_the_key(raw, words):
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"source": "toy", "name": "moons"}, **raw} if "data" not in raw else raw)
    for w in words:
        assert w in str(info.value)


def test_build_errors_and_resolve():
    with pytest.raises(ScheduleError, match=r"\[schedule\].*beta_end"):
        build(parse_config({**TINY, "schedule": {"beta_end": 1.0}}))
    cfg = parse_config(TINY)
    dataset, method, net = build(cfg)
    full = resolve(cfg, dataset)
    assert full.network["kind"] == "mlp" and full.schedule["family"] == "linear" and full.train["ema_decay"] == 0.999
    assert parse_config(__import__("tomllib").loads(full.to_toml())).to_dict() == full.to_dict()


def test_checkpoint_round_trip_and_truncation(tmp_path):
    import torch

    state = {"step": 3, "w": torch.arange(4.0), "opt": {"state": {0: {"m": torch.ones(2)}}, "groups": [{"lr": 0.1, "betas": [0.9, 0.99]}]}}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["step"] == 3 and torch.equal(back["opt"]["state"][0]["m"], torch.ones(2))
    data = (tmp_path / "c.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="t.safetensors"):
        load_checkpoint(tmp_path / "t.safetensors")


def test_control_pause_resume_cancel():
    c = JobControl()
    c.checkpoint()
    c.pause()
    woke = []
    t = threading.Thread(target=lambda: (c.checkpoint(), woke.append(1)))
    t.start()
    time.sleep(0.05)
    assert c.paused and not woke
    c.resume()
    t.join(2)
    assert woke == [1]
    c.pause()
    c.cancel()  # a cancel wakes a paused job
    with pytest.raises(Cancelled):
        c.checkpoint()


def test_train_job_events_and_run_dir(tmp_path):
    events = list(train_job(TINY, tmp_path / "run"))
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == list(range(5, 61, 5))
    p = progress[-1]
    assert p.level_log_snr.shape == p.level_loss.shape and p.level_loss.dtype == np.float32 and len(p.level_loss) == 5 * 128
    assert p.memory["kind"] in ("cpu", "cuda") and p.samples_per_s > 0 and np.isfinite(p.loss)
    previews = [e for e in events if isinstance(e, Preview)]
    assert [e.step for e in previews] == [30, 60] and previews[0].points.shape == (16, 2)
    assert [e.step for e in events if isinstance(e, CheckpointSaved)] == [30, 60]
    run = RunDir(tmp_path / "run")
    assert [r["step"] for r in run.metrics()] == list(range(1, 61))
    assert run.tail_metrics(55)[0]["step"] == 56
    # each flush's last row carries a sample of its (log-SNR, loss) pairs, for a follower
    sampled = [r for r in run.metrics() if "level_log_snr" in r]
    assert [r["step"] for r in sampled] == list(range(5, 61, 5))
    assert all(len(r["level_log_snr"]) == len(r["level_loss"]) == 64 for r in sampled)
    gaps = np.abs(np.asarray(sampled[-1]["level_log_snr"])[:, None] - p.level_log_snr[None, :]).min(1)
    assert gaps.max() < 1e-3  # drawn from the last Progress's own pairs
    assert len(run.checkpoints()) == 2 and len(run.previews()) == 2
    method, net, info = run.load_model("ema")
    assert info.kind == "points" and info.shape == (2,)


def test_runner_pause_cancel_and_copies(tmp_path):
    control = JobControl()
    runner = ThreadRunner(train_job({**TINY, "train": {**TINY["train"], "steps": 100000, "preview_every": 0}}, tmp_path / "run", control=control))
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline and not any(isinstance(e, Progress) for e in seen):
        seen += runner.drain()
        time.sleep(0.01)
    control.pause()
    time.sleep(0.2)
    seen += runner.drain()
    step_paused = RunDir(tmp_path / "run").metrics()[-1]["step"]
    time.sleep(0.3)
    seen += runner.drain()
    assert RunDir(tmp_path / "run").metrics()[-1]["step"] == step_paused  # nothing moves while paused
    control.cancel()
    runner.join(30)
    assert not runner.alive
    seen += runner.drain()
    assert isinstance(seen[-1], Finished) and seen[-1].result["cancelled"]
    assert RunDir(tmp_path / "run").status()["state"] == "cancelled"
    assert RunDir(tmp_path / "run").latest_checkpoint() is not None  # cancel saves what it did
    levels = [e.level_loss for e in seen if isinstance(e, Progress)]
    assert levels and all(a.flags.owndata for a in levels)


def test_runner_reports_exceptions():
    def broken():
        yield Started("x", None, 1, {})
        raise ConfigError("[train] lr = -1: expected a number > 0")

    r = ThreadRunner(broken())
    r.join(5)
    events = r.drain()
    assert isinstance(events[-1], Failed) and "[train] lr" in events[-1].message


def test_sample_job_streams_copies_and_trajectory(tmp_path):
    list(train_job(TINY, tmp_path / "run"))
    events = list(sample_job(tmp_path / "run", sampler="ddim", steps=10, n=8, seed=1, trajectory=tmp_path / "t.h5"))
    steps = [e for e in events if isinstance(e, SampleStep)]
    assert [s.index for s in steps] == list(range(10)) and steps[0].total == 10
    assert all(s.x_t.flags.owndata and s.x0_hat.flags.owndata and s.eps_hat.flags.owndata for s in steps)
    result = events[-1].result
    assert result["samples"].shape == (8, 2)
    from studio.engine.trajectory import TrajectoryReader

    with TrajectoryReader(tmp_path / "t.h5") as r:
        assert len(r) == 10
        np.testing.assert_allclose(r.samples(), result["samples"], rtol=1e-6)
        np.testing.assert_allclose(r.step(4)["x0_hat"], steps[4].x0_hat, atol=1e-2, rtol=1e-2)
    # same seed, same samples; branching from a recorded state continues on the grid
    again = list(sample_job(tmp_path / "run", sampler="ddim", steps=10, n=8, seed=1, records=False))
    np.testing.assert_array_equal(again[-1].result["samples"], result["samples"])
    branch = list(sample_job(tmp_path / "run", sampler="ddim", steps=6, seed=1, x_init=steps[4].x_t, t_start=steps[4].t, records=False))
    np.testing.assert_allclose(branch[-1].result["samples"], result["samples"], atol=1e-4)
    # a multistep sampler continues exactly given the previous step's x0_hat and t
    main = [e for e in sample_job(tmp_path / "run", sampler="dpmpp_2m", steps=10, n=8, seed=1) if isinstance(e, SampleStep)]
    full = list(sample_job(tmp_path / "run", sampler="dpmpp_2m", steps=10, n=8, seed=1, records=False))[-1].result["samples"]
    branch = list(sample_job(tmp_path / "run", sampler="dpmpp_2m", steps=6, seed=1, x_init=main[4].x_t, t_start=main[4].t,
                             x0_prev=main[3].x0_hat, t_prev=main[3].t, records=False))
    np.testing.assert_allclose(branch[-1].result["samples"], full, atol=2e-6)  # measured 1.2e-7
    first_order = list(sample_job(tmp_path / "run", sampler="dpmpp_2m", steps=6, seed=1, x_init=main[4].x_t,
                                  t_start=main[4].t, records=False))  # no history: 6e-5 away
    assert np.abs(first_order[-1].result["samples"] - full).max() > 1e-5


def test_progress_carries_a_learned_schedule_as_it_trains(tmp_path):
    learned = {**TINY, "schedule": {"family": "vdm_learned"}, "method": {"name": "vdm"},
               "train": {**TINY["train"], "lr": 1e-2, "preview_every": 0}}
    events = [e for e in train_job(learned, tmp_path / "vdm") if isinstance(e, Progress)]
    curves = [e.schedule_log_snr for e in events if e.schedule_log_snr is not None]
    assert curves, "the first Progress reads the schedule"
    first = curves[0]
    assert first.shape == (129,) and np.all(np.diff(first) < 0)  # log-SNR strictly decreasing in t
    # it is the trained schedule: the final checkpoint's schedule gives the last reading
    # back when the reading came at the last Progress (else it moved on since)
    import torch

    from studio.engine.events import SCHEDULE_TIMES

    method, _, _ = RunDir(tmp_path / "vdm").load_model("net")
    with torch.no_grad():
        final = method.schedule.log_snr(torch.as_tensor(SCHEDULE_TIMES, dtype=torch.float32)).double().numpy()
    if events[-1].schedule_log_snr is not None:
        np.testing.assert_allclose(events[-1].schedule_log_snr, final, rtol=1e-6, atol=1e-6)
    assert not np.allclose(first, final, atol=1e-4)  # at lr 1e-2 it moved from its start
    fixed = [e.schedule_log_snr for e in train_job(TINY, tmp_path / "ddpm") if isinstance(e, Progress)]
    assert all(c is None for c in fixed)  # nothing to draw for a fixed schedule

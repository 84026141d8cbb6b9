"""SIGKILL at random moments (fixed seed, bounded count) during CLI training, each
followed by a resume: the run directory is never corrupt (every file parses, every
checkpoint loads, metrics rows are contiguous), it always resumes, and the finished run's
metrics equal an uninterrupted run's, row for row."""

from __future__ import annotations

import random

import pytest

from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir

from .procs import assert_intact, cli, kill_target, killed_after, last_step, metric_table, run_cli, status, tiny_config, wait_for

KILLS = 5
STEPS = 3000  # ~1000 steps a second here: the start-up kills below land before a round could finish


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_random_sigkills_then_resume_match_uninterrupted(tmp_path):
    rng = random.Random(1414)
    config = tiny_config(tmp_path, steps=STEPS, checkpoint_every=25)
    run, whole = tmp_path / "run", tmp_path / "whole"
    reference = cli("train", config, "--out", whole)  # the uninterrupted run, alongside
    kills, finished, landed = 0, False, []
    for k in range(KILLS):
        fresh = not (run / "config.toml").exists()
        proc = cli("train", config, "--out", run) if fresh else cli("train", run, "--resume")
        if k % 3 == 0:  # some kills land anywhere: interpreter start-up, data, model, first writes
            delay = rng.uniform(0.0, 2.0)
        else:  # most land in training, between a drawn step's writes: step, metric flush, checkpoint, beat
            wait_for(lambda: status(run).get("pid") == proc.pid or proc.poll() is not None, 120, "training", None)
            target = kill_target(rng, run, STEPS)
            wait_for(lambda: last_step(run) >= target or proc.poll() is not None, 120, f"step {target}")
            delay = rng.uniform(0.0, 0.05)
        if not killed_after(proc, delay):
            finished = True
            break
        kills += 1
        landed.append(last_step(run))
        assert_intact(run)
        if status(run):
            assert run_liveness(run) in ("stopped", "finished")
    if not finished:
        done = run_cli("train", run, "--resume", timeout=240)
        assert done.returncode == 0, done.stderr
    assert reference.wait(timeout=240) == 0, reference.stderr.read()
    assert assert_intact(run) == STEPS and run_liveness(run) == "finished"
    assert metric_table(whole) == metric_table(run)
    leftovers = [p.name for p in run.rglob(".*.tmp.*")]
    assert not leftovers, leftovers
    assert kills == KILLS, f"only {kills} of {KILLS} kills landed"
    print(f"kill loop: {kills} SIGKILLs (at metrics steps {landed}), {len(RunDir(run).checkpoints())} checkpoints kept, {STEPS} rows equal")

"""SIGKILL at random moments (fixed seed, bounded count) of the real app training a run
it started: each round is a process that builds the main window (tests/gui/app_driver.py)
and presses the Training panel's Start, or, reopened on the run, Resume run. After every
kill the run directory is intact and the rows up to its last checkpoint equal an
uninterrupted CLI run's; the finished run's metrics equal it row for row.

The moments are seeded in the run's own terms, not in seconds alone: the first kill
within the app's start-up (imports, window, Start, the job's first writes), the others
at a drawn training step plus a few milliseconds. A kill timed only in seconds landed,
on a faster machine, after the job had finished (a tiny run trains ~1000 steps a second
here), and the next round had nothing left to resume."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.run_lock import run_liveness
from studio.engine.runs import RunDir
from tests.engine.procs import (ENV, assert_intact, cli, kill_target, killed_after, last_step, metric_table, status, tiny_config,
                                wait_for)

KILLS = 3
STEPS = 3000
START_UP_S = 2.5  # the app's imports alone take about this long here: the first kill lands before training ends


def app(tmp_path, *args: object) -> subprocess.Popen:
    env = {**ENV, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.Popen([sys.executable, "-m", "tests.gui.app_driver", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def the_run(root: Path) -> Path | None:
    """The one run the app trains: a kill before its config.toml was written leaves at most
    an empty folder, and the next round presses Start again."""
    started = [p for p in root.iterdir() if (p / "config.toml").exists()] if root.exists() else []
    assert len(started) <= 1, started
    return started[0] if started else None


def writing(root, proc) -> bool:
    run = the_run(root)
    return run is not None and status(run).get("pid") == proc.pid


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_random_sigkills_of_the_app_then_resume_match_uninterrupted(tmp_path):
    rng = random.Random(1415)
    (tmp_path / "config").mkdir()
    config = tiny_config(tmp_path, steps=STEPS, checkpoint_every=25)
    root, whole = tmp_path / "runs", tmp_path / "whole"
    reference = cli("train", config, "--out", whole)  # the uninterrupted run, alongside
    kills, finished, kept, landed = 0, False, [], []  # kept: (a kill's last checkpoint step, its rows up to there)
    for k in range(KILLS):
        run = the_run(root)
        proc = app(tmp_path, "start", config, root) if run is None else app(tmp_path, "resume", run)
        if k == 0:  # the first lands anywhere in start-up: imports, window, Start, the job's first writes
            delay = rng.uniform(0.0, START_UP_S)
        else:  # the others in training, between a drawn step's writes: step, metric flush, checkpoint, beat
            wait_for(lambda: writing(root, proc) or proc.poll() is not None, 120, "training")
            target = kill_target(rng, the_run(root), STEPS)
            wait_for(lambda: last_step(the_run(root)) >= target or proc.poll() is not None, 120, f"step {target}")
            delay = rng.uniform(0.0, 0.05)
        if not killed_after(proc, delay):
            finished = True
            break
        kills += 1
        run = the_run(root)
        landed.append(last_step(run))
        for folder in root.iterdir() if root.exists() else ():
            assert_intact(folder)
        if run is not None and status(run):
            assert run_liveness(run) in ("stopped", "finished")
            checkpoints = RunDir(run).checkpoints()
            if checkpoints:
                last = int(checkpoints[-1].stem.split("_")[1])
                kept.append((last, metric_table(run, upto=last)))
    if not finished:  # the app reopened on the run once more: Resume run, to the end
        run = the_run(root)
        done = app(tmp_path, "resume", run) if run is not None else app(tmp_path, "start", config, root)
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    run = the_run(root)
    assert assert_intact(run) == STEPS and run_liveness(run) == "finished"
    expected = metric_table(whole)
    for last, rows in kept:  # what each kill left up to its last checkpoint
        assert rows == expected[:last], f"rows up to checkpoint {last} differ"
    assert metric_table(run) == expected
    leftovers = [p.name for p in run.rglob(".*.tmp.*")]
    assert not leftovers, leftovers
    assert kills == KILLS, f"only {kills} of {KILLS} kills landed"
    print(f"app kill loop: {kills} SIGKILLs (at metrics steps {landed}), {len(kept)} checkpoints compared, {STEPS} rows equal")

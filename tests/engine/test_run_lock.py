"""One writer per run directory: the lock, the heartbeat and run_liveness, with real
processes (a second CLI writer refused, a killed writer's run judged stopped and resumed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from studio.engine.run_lock import RunLock, RunLocked, check_writable, lock_path, run_liveness
from studio.engine.runs import RunDir

from .procs import ENV, cli, metric_rows, run_cli, status, tiny_config, wait_for


def test_second_lock_is_refused_naming_run_and_holder(tmp_path):
    run = RunDir(tmp_path / "run")
    with RunLock(run, heartbeat_s=60):
        with pytest.raises(RunLocked) as err:
            RunLock(RunDir(run.path)).acquire()
        assert str(run.path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
        with pytest.raises(RunLocked):
            check_writable(run.path)
    RunLock(RunDir(run.path)).acquire().release()  # released on exit: free again
    check_writable(run.path)


def test_heartbeat_refreshes_a_running_status_and_never_overwrites_an_end(tmp_path):
    run = RunDir(tmp_path / "run")
    lock = RunLock(run, heartbeat_s=0.02).acquire()
    try:
        run.write_status("running", 7)
        first = run.status()["time"]
        wait_for(lambda: run.status().get("time", 0) > first, 10, "a heartbeat")
        assert run.status()["step"] == 7 and run.status()["host"] and run.status()["pid"] == os.getpid()
        assert json.loads(lock_path(run.path).read_text())["pid"] == os.getpid()
        assert run_liveness(run.path) == "running"
        run.write_status("finished", 9)
        time.sleep(0.2)  # ten beats
        assert run.status()["state"] == "finished"
    finally:
        lock.release()
    assert run_liveness(run.path) == "finished"


def test_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path):
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from studio.engine.run_lock import RunLock\n"
        "from studio.engine.runs import RunDir\n"
        f"r = RunDir({str(run)!r}); RunLock(r).acquire(); r.write_status('running', 5)\n"
        "print('held', flush=True); time.sleep(600)\n")], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert run_liveness(run) == "running"
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            RunLock(RunDir(run)).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert status(run)["state"] == "running"  # what a killed writer leaves behind ...
    assert run_liveness(run) == "stopped"  # ... is judged by its lock, which died with it
    lock = RunLock(RunDir(run)).acquire()
    assert lock.stale_holder["pid"] == child.pid
    lock.release()


def test_a_run_written_on_another_host_is_judged_by_its_heartbeat(tmp_path):
    run = tmp_path / "run"
    run.mkdir()

    def written_elsewhere(age: float) -> None:
        (run / "status.json").write_text(json.dumps(
            {"state": "running", "step": 40, "pid": 1, "host": "node-17.cluster", "time": time.time() - age}))

    written_elsewhere(1.0)
    assert run_liveness(run) == "running"
    with pytest.raises(RunLocked, match="node-17.cluster"):
        check_writable(run)
    with pytest.raises(RunLocked, match="node-17.cluster"):
        RunLock(RunDir(run)).acquire()
    written_elsewhere(3600.0)  # its machine went down an hour ago
    assert run_liveness(run) == "stopped"
    check_writable(run)
    RunLock(RunDir(run)).acquire().release()
    assert run_liveness(tmp_path / "nothing") == "unknown"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_cli_second_writer_refused_then_killed_writer_resumed(tmp_path):
    config, run = tiny_config(tmp_path), tmp_path / "run"
    first = cli("train", config, "--out", run)
    try:
        wait_for(lambda: (run / "checkpoints" / "step_00000050.safetensors").exists(), 120, "a checkpoint", first)
        assert run_liveness(run) == "running"
        second = run_cli("train", run, "--resume", "--steps", "200000")
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(run) in lines[0] and f"pid {first.pid}" in lines[0], second.stderr
        assert status(run)["pid"] == first.pid and first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert run_liveness(run) == "stopped"
    done = max(r["step"] for r in metric_rows(run))
    resumed = run_cli("train", run, "--resume", "--steps", str(done + 60))
    assert resumed.returncode == 0, resumed.stderr
    assert run_liveness(run) == "finished" and status(run)["step"] == done + 60
    assert [r["step"] for r in metric_rows(run)] == list(range(1, done + 61))

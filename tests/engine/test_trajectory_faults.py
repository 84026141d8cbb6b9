"""Trajectory files cut mid-write: bytes lost (a copy that stopped, a full disk) is a
DataError naming the file at once (an SWMR open of such a file used to retry its
metadata for minutes); a writer killed between steps leaves a readable prefix; a file a
live process is appending to is never mistaken for a cut one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from studio.core.errors import DataError
from studio.engine.trajectory import TrajectoryReader, TrajectoryWriter, hdf5_end_of_file

from .procs import ENV


def write(path, steps=12, shape=(4, 2)):
    with TrajectoryWriter(path, steps=steps, sample_shape=shape) as w:
        for i in range(steps):
            x = np.full(shape, i, np.float32)
            w.append(i, 1 - i / steps, 5.0 - i, 1.0, x, x, x)
        w.finish(x)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_file_is_named_not_hung(tmp_path, keep):
    path = tmp_path / "traj.h5"
    write(path)
    whole = path.read_bytes()
    assert hdf5_end_of_file(path) == len(whole)  # a closed file ends where its superblock says
    path.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(DataError, match="traj.h5"):
        TrajectoryReader(path)


WRITER = """
import sys, time
import numpy as np
from studio.engine.trajectory import TrajectoryWriter
w = TrajectoryWriter(sys.argv[1], steps=100000, sample_shape=(16, 2))
for i in range(100000):
    x = np.full((16, 2), i, np.float32)
    w.append(i, 0.5, 0.0, 1.0, x, x, x)
    if i == 5:
        print("going", flush=True)
    time.sleep(0.002)
"""


@pytest.mark.timeout(120)
def test_live_writer_then_killed_mid_write(tmp_path):
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "going"
        seen = 0
        for _ in range(15):  # opened at arbitrary moments of the writer's appends
            with TrajectoryReader(path) as r:
                n = len(r)
                assert n >= seen
                step = r.step(n - 1)
                assert np.all(step["x_t"] == step["index"])
                seen = n
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with TrajectoryReader(path) as r:  # what the kill left: every flushed step, nothing torn
        n = len(r)
        assert seen <= n < r.steps
        for i in (0, n // 2, n - 1):
            assert np.all(r.step(i)["x_t"] == i)

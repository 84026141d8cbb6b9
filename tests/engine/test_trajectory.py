"""Trajectory HDF5: layout and dtypes, round trip, and reading while it is written
(from a thread of this process and from another process, SWMR)."""

from __future__ import annotations

import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest

from studio.core.errors import DataError
from studio.engine.trajectory import TrajectoryReader, TrajectoryWriter


def fake_step(i: int, shape=(4, 3, 8, 8)):
    rng = np.random.default_rng(i)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


def test_round_trip_layout(tmp_path):
    path = tmp_path / "t.h5"
    with TrajectoryWriter(path, 5, (4, 3, 8, 8), attrs={"config": '{"a": 1}', "sampler": "ddim", "seed": 3}) as w:
        for i in range(5):
            x, e = fake_step(i)
            w.append(i, 1 - i / 5, 2.0 - i, 0.5, x, 0.5 * x, e)
        w.finish(np.ones((4, 3, 8, 8)))
    with h5py.File(path, "r") as f:
        for name in ("x_t", "x0_hat", "eps_hat"):
            assert f[name].shape == (5, 4, 3, 8, 8) and f[name].dtype == np.float16
            assert f[name].chunks == (1, 4, 3, 8, 8) and f[name].compression is None
        assert f["t"].shape == (5,) and f.attrs["sampler"] == "ddim"
    with TrajectoryReader(path) as r:
        assert len(r) == 5 and r.steps == 5 and r.config == {"a": 1}
        s = r.step(2)
        x, e = fake_step(2)
        np.testing.assert_allclose(s["x_t"], x, atol=2e-3, rtol=1e-3)
        np.testing.assert_allclose(s["eps_hat"], e, atol=2e-3, rtol=1e-3)
        assert s["index"] == 2 and s["log_snr"] == 0.0 and s["t"] == pytest.approx(0.6)
        assert r.step(-1)["index"] == 4
        assert (r.samples() == 1).all()
        with pytest.raises(IndexError):
            r.step(5)


def test_huge_values_do_not_overflow_float16(tmp_path):
    with TrajectoryWriter(tmp_path / "t.h5", 1, (2,), eps_hat=False) as w:
        w.append(0, 1.0, -10.0, 100.0, np.array([1e6, -1e6]), np.zeros(2))
    with TrajectoryReader(tmp_path / "t.h5") as r:
        assert np.isfinite(r.step(0)["x_t"]).all()


def test_read_while_writing_thread_and_process(tmp_path):
    path = tmp_path / "t.h5"
    w = TrajectoryWriter(path, 6, (4, 3, 8, 8))
    for i in range(3):
        w.append(i, 1.0, 0.0, 1.0, *fake_step(i))
    seen = []
    r = TrajectoryReader(path)
    t = threading.Thread(target=lambda: seen.append((len(r), r.step(2)["index"])))
    t.start()
    t.join()
    assert seen == [(3, 2)]
    code = (
        "import sys; from studio.engine.trajectory import TrajectoryReader;"
        f"r = TrajectoryReader({str(path)!r}); print(len(r), r.step(-1)['index'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "2"]
    w.append(3, 0.5, 0.0, 1.0, *fake_step(3))
    assert len(r) == 4 and r.step(3)["index"] == 3
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "3"]
    w.close()
    r.close()


def test_reader_errors(tmp_path):
    with pytest.raises(DataError, match="nope.h5"):
        TrajectoryReader(tmp_path / "nope.h5")
    (tmp_path / "bad.h5").write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.h5"):
        TrajectoryReader(tmp_path / "bad.h5")

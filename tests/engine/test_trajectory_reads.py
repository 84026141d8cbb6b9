"""The viewer's lean reads of a trajectory (``arrays``, ``per_step``) and the record
count kept apart from a caller's ``steps`` attribute."""

from __future__ import annotations

import numpy as np

from studio.engine.trajectory import TrajectoryReader, TrajectoryWriter


def test_arrays_and_per_step_match_step_while_growing(tmp_path):
    path = tmp_path / "t.h5"
    rng = np.random.default_rng(0)
    w = TrajectoryWriter(path, 5, (3, 2), attrs={"steps": 2, "sampler": "langevin"})
    states = [rng.normal(size=(3, 3, 2)).astype(np.float32) for _ in range(3)]
    for i, (x, x0, eps) in enumerate(states):
        w.append(i, 1.0 - i / 5, 2.0 - i, 0.5 + i, x, x0, eps)
    r = TrajectoryReader(path)
    assert r.steps == 5 and r.attrs["steps"] == 2  # records vs the sampler's grid points
    assert len(r) == 3
    per = r.per_step()
    np.testing.assert_array_equal(per["index"], [0, 1, 2])
    np.testing.assert_allclose(per["log_snr"], [2.0, 1.0, 0.0])
    for i in range(3):
        a = r.arrays(i)
        assert a["x_t"].dtype == np.float16 and set(a) == {"x_t", "x0_hat", "eps_hat"}
        for name in a:
            np.testing.assert_array_equal(a[name].astype(np.float32), r.step(i)[name])
    assert set(r.arrays(1, ("x_t",))) == {"x_t"}
    w.append(3, 0.1, -1.0, 3.0, *states[0])
    assert len(r) == 4 and len(r.per_step()["t"]) == 4
    w.close()
    r.close()

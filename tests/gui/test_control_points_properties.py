"""Property test (hypothesis): the custom schedule's control points, dragged anywhere in
any order (far outside the plot too), stay strictly monotone, and the schedule built
from them is accepted with finite, strictly decreasing log-SNR."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.schedules import make_schedule
from studio.gui.panels.schedule.control_points import clamp_point

drags = st.lists(st.tuples(st.integers(0, 6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 7), drags)
def test_dragged_points_stay_monotone(n, moves):
    points = np.stack([np.linspace(0.0, 1.0, n), np.linspace(10.0, -10.0, n)], axis=1)
    for index, t, lam in moves:
        index %= n
        points[index] = clamp_point(points, index, t, lam)
        assert points[0, 0] == 0.0 and points[-1, 0] == 1.0
        assert np.all(np.diff(points[:, 0]) > 0) and np.all(np.diff(points[:, 1]) < 0), points
    schedule = make_schedule("custom", points=points.tolist())
    lam = schedule.log_snr(torch.linspace(0, 1, 257, dtype=torch.float64)).numpy()
    assert np.all(np.isfinite(lam)) and np.all(np.diff(lam) < 0)

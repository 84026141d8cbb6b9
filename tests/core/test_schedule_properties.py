"""Property tests (hypothesis): every schedule a config or the editor accepts has finite,
strictly decreasing log-SNR and betas in (0, 1); every one refused says why, naming the
parameter or the step. Example counts stay modest (the suite has a time budget)."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core.errors import StudioError
from studio.core.schedules import make_schedule

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# wide ranges on purpose: valid, invalid and numerically extreme values all come up
betas = st.one_of(st.floats(-0.5, 1.5), st.floats(1e-30, 1e-6), st.floats(0.9, 1.0), st.sampled_from([0.0, 1.0, math.nan, math.inf]))
steps = st.one_of(st.integers(-3, 3000), st.sampled_from([0, 1, 2]))
PARAMS = {
    "linear": {"steps": steps, "beta_start": betas, "beta_end": betas, "zero_terminal_snr": st.booleans()},
    "quadratic": {"steps": steps, "beta_start": betas, "beta_end": betas, "zero_terminal_snr": st.booleans()},
    "sigmoid": {"steps": steps, "beta_start": betas, "beta_end": betas, "zero_terminal_snr": st.booleans()},
    "cosine": {"steps": steps, "s": st.floats(-0.1, 2.0), "max_beta": betas, "zero_terminal_snr": st.booleans()},
    "geometric": {"steps": steps, "sigma_max": st.floats(-1.0, 1e4), "sigma_min": st.floats(-1.0, 100.0)},
    "vdm_fixed": {"steps": steps, "gamma_min": st.floats(-40.0, 40.0), "gamma_max": st.floats(-40.0, 40.0)},
}


@st.composite
def schedule_params(draw):
    family = draw(st.sampled_from(sorted(PARAMS)))
    params = {k: draw(v) for k, v in PARAMS[family].items() if draw(st.booleans())}
    return family, params


def assert_well_formed(schedule, ztsnr: bool) -> None:
    if schedule.discrete:
        lam = schedule.log_snr_steps.double().numpy()
        b = schedule.betas.double().numpy()
        inner = b[:-1] if ztsnr else b
        assert np.all((inner > 0) & (inner < 1)), b
        if ztsnr:
            assert b[-1] == 1.0 and lam[-1] == -np.inf
            lam = lam[:-1]
    else:
        t = torch.linspace(0, 1, 257, dtype=torch.float64)
        lam = schedule.log_snr(t).double().numpy()
    assert np.all(np.isfinite(lam)), lam
    assert np.all(np.diff(lam) < 0), "log-SNR not strictly decreasing"


@SETTINGS
@given(schedule_params())
def test_accepted_schedules_are_well_formed_and_refusals_say_why(case):
    family, params = case
    try:
        schedule = make_schedule(family, **params)
    except StudioError as exc:
        message = str(exc)
        assert message and ("=" in message or "beta[" in message or "log-SNR" in message), message
        return
    assert_well_formed(schedule, bool(params.get("zero_terminal_snr")))


points = st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(-40.0, 40.0)), min_size=0, max_size=7)


@SETTINGS
@given(points, st.booleans())
def test_custom_control_points_accepted_or_refused_with_a_message(inner, sort):
    pts = sorted(inner) if sort else inner
    lams = sorted((p[1] for p in pts), reverse=True) if sort else [p[1] for p in pts]
    pts = [(0.0, 20.0), *[(t, lam) for (t, _), lam in zip(pts, lams)], (1.0, -20.0)]
    try:
        schedule = make_schedule("custom", points=pts)
    except StudioError as exc:
        assert "point" in str(exc) or "log-SNR" in str(exc), str(exc)
        return
    assert_well_formed(schedule, False)

"""``diffusion-studio schedule --density --weighting --grid`` through a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.test_cli import one_line_error, run_cli


def test_schedule_density_weighting_grid_json():
    proc = run_cli("schedule", "vdm_fixed", "gamma_min=-10.0", "gamma_max=6.0", "--density", "--weighting",
                   "--grid", "uniform_log_snr", "--grid-steps", "11", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    d = out["density"]
    assert d["kind"] == "continuous"
    np.testing.assert_allclose(d["density"], 1 / 16, rtol=1e-9)  # linear gamma: uniform on [-6, 10]
    shares = d["band_shares"]
    assert shares["lambda < -5"] == (1 / 16) and abs(shares["lambda > 5"] - 5 / 16) < 1e-12
    w = out["weighting"]
    assert set(w) >= {"eps_mse", "x0_mse", "v_mse", "vdm_elbo"}
    np.testing.assert_allclose(w["vdm_elbo"]["effective"], 0.5, rtol=1e-6)
    lam = np.array(w["x0_mse"]["log_snr"])
    np.testing.assert_allclose(w["x0_mse"]["weight"], np.exp(-lam), rtol=1e-9)
    g = out["grid"]
    assert len(g["log_snr"]) == 11 and g["largest_jump"] > 0
    np.testing.assert_allclose(np.diff(g["log_snr"]), g["largest_jump"], rtol=1e-6)


@pytest.mark.slow  # a second interpreter start with torch (~10 s on a busy machine)
def test_schedule_density_plot_and_text(tmp_path):
    png = tmp_path / "cos.png"
    proc = run_cli("schedule", "cosine", "steps=1000", "--density", "--weighting", "eps_mse,vdm_elbo", "--plot", png)
    assert proc.returncode == 0, proc.stderr
    assert "share of training lambda < -5: 5.3%" in proc.stdout  # the discrete cosine's 53 of 1000 steps
    assert "weighting vdm_elbo" in proc.stdout
    img = Image.open(png)
    assert img.size == (840, 24 + 4 * 260)  # 4 curves against t, density, weight, effective weight
    pixels = np.asarray(img.convert("RGB"))[24 + 2 * 260:, :420]  # the density panel
    assert (np.abs(pixels.astype(int) - (31, 119, 180)).sum(-1) < 30).sum() > 200  # its curve is drawn


def test_schedule_bad_weighting_is_one_line():
    proc = run_cli("schedule", "linear", "--weighting", "nope")
    assert proc.returncode == 2
    assert "nope" in one_line_error(proc) and "eps_mse" in one_line_error(proc)

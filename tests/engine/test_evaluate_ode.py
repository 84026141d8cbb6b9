"""evaluate(..., likelihood="ode") and `diffusion-studio evaluate RUN --likelihood ode`:
the probability-flow ODE's NLL beside the family's bound, on a tiny trained run."""

from __future__ import annotations

import json
import math

import pytest

from studio.cli import main
from studio.core.errors import StudioError
from studio.engine.evaluate import evaluate
from studio.engine.jobs import train_job
from studio.engine.runs import RunDir

TINY = {
    "data": {"source": "toy", "name": "8gaussians", "n": 2000},
    "schedule": {"steps": 50},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 60, "batch_size": 128, "log_every": 20, "checkpoint_every": 60, "preview_every": 0},
    "sample": {"steps": 20, "n": 16},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ode") / "run"
    list(train_job(TINY, path))
    return path


def test_ode_figures_beside_the_bound(run):
    figures = evaluate(run, n=200, sampler="ddim", steps=10, nll_samples=128, likelihood="ode")
    dim = 2
    info = RunDir(run).data_info()
    for key in ("ode_bits_per_dim", "ode_bits_per_dim_raw", "bits_per_dim", "true_bits_per_dim_raw"):
        assert math.isfinite(figures[key]), key
    # raw = model scale + log|scale| per dimension (change of variables)
    assert figures["ode_bits_per_dim_raw"] - figures["ode_bits_per_dim"] == pytest.approx(
        info.log_scale_sum() / (dim * math.log(2)), rel=1e-6)
    # a model trained 60 steps is a proper density far from the truth: above the true NLL
    assert figures["ode_bits_per_dim_raw"] > figures["true_bits_per_dim_raw"]
    assert figures["ode_nfe"] > 10
    without = evaluate(run, n=200, sampler="ddim", steps=10, nll_samples=128)
    assert "ode_bits_per_dim" not in without and without["bits_per_dim"] == pytest.approx(figures["bits_per_dim"])
    with pytest.raises(StudioError, match="likelihood"):
        evaluate(run, n=200, likelihood="elbo")


def test_cli_evaluate_likelihood_ode(run, capsys):
    assert main(["evaluate", str(run), "--n", "200", "--sampler", "ddim", "--steps", "10", "--likelihood", "ode", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["ode_bits_per_dim"] > 0 and figures["ode_nfe"] > 10


DIGITS = {
    "data": {"source": "digits"},
    "schedule": {"steps": 20},
    "network": {"kind": "unet", "base_channels": 8, "channel_mults": [1], "num_res_blocks": 1, "attention_resolutions": []},
    "train": {"steps": 4, "batch_size": 16, "log_every": 2, "checkpoint_every": 4, "preview_every": 0},
    "sample": {"steps": 2, "n": 4},
}


def test_image_ode_bits_per_dim_is_finite_and_seeded(tmp_path):
    """The image path: uniform dequantisation on the data's levels, the Hutchinson
    divergence (64 dimensions > the exact-divergence limit), bits/dim on the levels."""
    path = tmp_path / "digits"
    list(train_job(DIGITS, path))
    args = dict(n=4, sampler="ddim", steps=2, nll_samples=4, likelihood="ode")
    first, again, other = evaluate(path, seed=1, **args), evaluate(path, seed=1, **args), evaluate(path, seed=2, **args)
    levels = RunDir(path).data_info().meta["levels"]
    assert first["kind"] == "images" and first["ode_nfe"] > 2
    for key in ("ode_bits_per_dim", "ode_bits_per_dim_raw", "ode_bits_per_dim_discrete"):
        assert math.isfinite(first[key]) and first[key] > 0, key
        assert first[key] == again[key], key  # the same dequantisation noise and probes
    assert first["ode_bits_per_dim_discrete"] == pytest.approx(first["ode_bits_per_dim_raw"] + math.log2(levels))
    assert other["ode_bits_per_dim"] != first["ode_bits_per_dim"]  # other noise, other estimate

"""EDM (plugins/edm_method.py) trained through the CLI on the swiss roll to a sliced
Wasserstein distance near DDPM's (the ddpm_toy config) at the same budget: the same
data, network, optimiser settings and training steps, each sampled with the ancestral
sampler (DDPM on its 200 steps, EDM on 100 Karras levels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.procs import side_by_side
from tests.test_cli import CONFIGS

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
STEPS = "800"


def edm_config() -> str:
    """ddpm_toy with its [schedule] and [method] swapped for EDM's (sigma_data = 1: the
    studio standardises points)."""
    text = (CONFIGS / "ddpm_toy.toml").read_text()
    head, rest = text.split("[schedule]", 1)
    _, tail = rest.split("[network]", 1)
    tail = tail.replace('sampler = "ancestral"\nsteps = 200', 'sampler = "ancestral"\nsteps = 100')
    assert 'steps = 100' in tail
    return (
        head + '[schedule]\nfamily = "karras"\nsteps = 100\nsigma_min = 0.002\nsigma_max = 80.0\n\n'
        '[method]\nname = "edm"\nsigma_data = 1.0\n\n[network]' + tail
    )


def trained_swd(configs: dict[str, Path], root: Path) -> dict[str, dict]:
    """Both trained side by side, then both evaluated side by side."""
    side_by_side({name: ("--plugins", PLUGINS, "train", config, "--out", root / name, "--steps", STEPS)
                  for name, config in configs.items()}, root)
    printed = side_by_side({name: ("--plugins", PLUGINS, "evaluate", root / name, "--json") for name in configs}, root)
    return {name: json.loads(text) for name, text in printed.items()}


@pytest.mark.slow
def test_edm_reaches_ddpm_quality_on_the_swiss_roll(tmp_path):
    (tmp_path / "edm_toy.toml").write_text(edm_config())
    figures = trained_swd({"edm": tmp_path / "edm_toy.toml", "ddpm": CONFIGS / "ddpm_toy.toml"}, tmp_path)
    edm, ddpm = figures["edm"], figures["ddpm"]
    print(f"sliced Wasserstein: EDM {edm['sliced_wasserstein']:.4f}, DDPM {ddpm['sliced_wasserstein']:.4f}")
    assert edm["sampler"] == "ancestral" and edm["steps"] == 100
    # EDM's prior is N(0, 80^2): far from the data, and the samples end close to it
    assert edm["sliced_wasserstein"] < 0.01 * edm["sliced_wasserstein_prior"], edm
    # near DDPM's figure (measured at 800 steps: DDPM 0.052 predicting eps, 0.035 predicting
    # v as ddpm_toy does since issue 12, EDM 0.032; two held-out-sized draws of the data
    # differ by 0.03-0.05)
    assert edm["sliced_wasserstein"] < 1.6 * ddpm["sliced_wasserstein"] + 0.01, (edm, ddpm)
    assert 0.8 < edm["sample_std"] / edm["reference_std"] < 1.2, edm

"""Every shipped config parses, builds, trains a few steps and samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.engine.config import load_config
from studio.engine.events import Finished
from studio.engine.jobs import sample_job, train_job

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "resources" / "configs").glob("*.toml"))


def test_a_config_per_family_and_data():
    names = {p.stem for p in CONFIGS}
    for family in ("ncsn", "ddpm", "vdm"):
        assert {f"{family}_toy", f"{family}_digits"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_and_samples(tmp_path, path):
    cfg = load_config(path)
    cfg.train.update(steps=4, batch_size=16, preview_every=0, log_every=2)
    events = list(train_job(cfg, tmp_path / "run"))
    assert isinstance(events[-1], Finished), events[-1]
    done = list(sample_job(tmp_path / "run", steps=3, n=4, records=False, options={} if cfg.sample.get("sampler") != "langevin" else {"n_steps_each": 1}))
    assert np.isfinite(done[-1].result["samples"]).all()

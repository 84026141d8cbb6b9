"""docs/PLUGINS.md: every minimal example is a whole plugin file that loads and works
(each code block that registers something is written to a plugins folder, loaded the way
the studio loads plugins, then used)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import studio.core.samplers  # noqa: F401  (registers the samplers)
from studio.core.registry import DATASETS, EXPORTERS, METHODS, NETWORKS, SAMPLERS
from studio.core.samplers import sample
from studio.core.schedules import make_schedule
from studio.engine.trajectory import TrajectoryReader, TrajectoryWriter
from studio.plugins import load_plugins, unload_plugins

DOC = Path(__file__).resolve().parents[2] / "docs" / "PLUGINS.md"


@pytest.fixture
def examples(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    plugins = [b for b in blocks if ".register(" in b]
    assert len(plugins) == 6, "one example per kind: schedule, method, sampler, network, dataset, exporter"
    for i, code in enumerate(plugins):
        (tmp_path / f"example_{i}.py").write_text(code)
    unload_plugins()
    report = load_plugins(tmp_path, entry_points=False)
    yield report
    unload_plugins()


def test_every_example_in_the_guide_loads_and_works(examples, tmp_path):
    assert examples.ok, examples.errors
    assert examples.added == {
        "schedules": ["linear_log_snr"], "methods": ["v_uniform"], "samplers": ["ddim_half"],
        "networks": ["tiny_mlp"], "datasets": ["stripes"], "exporters": ["sigma_csv"],
    }
    schedule = make_schedule("linear_log_snr", lam_max=8.0, lam_min=-8.0)
    lam = schedule.log_snr(torch.linspace(0, 1, 11, dtype=torch.float64))
    assert (lam[1:] < lam[:-1]).all() and float(lam[0]) == 8.0

    method = METHODS.get("v_uniform")(schedule)
    net = NETWORKS.get("tiny_mlp")((2,))
    x0 = torch.randn(64, 2)
    out = method.loss(net, x0, generator=torch.Generator().manual_seed(0))
    assert out.loss.shape == (64,) and torch.isfinite(out.loss).all()
    out.loss.mean().backward()  # trains

    x = sample("ddim_half", method, net, (16, 2), 8, generator=torch.Generator().manual_seed(0))
    assert x.shape == (16, 2) and torch.isfinite(x).all()

    stripes = DATASETS.get("stripes")(n=10, resolution=8)
    assert stripes.kind == "images" and stripes.shape == (1, 8, 8)

    traj = tmp_path / "t.h5"
    with TrajectoryWriter(traj, 3, (4, 2), {"data_kind": "points"}) as w:
        for i in range(3):
            w.append(i, 1 - i / 3, 0.0, 1.0, np.ones((4, 2)) * i, np.zeros((4, 2)), np.zeros((4, 2)))
        w.finish(np.zeros((4, 2)))
    with TrajectoryReader(traj) as reader:
        written = EXPORTERS.get("sigma_csv")(reader, tmp_path / "s.csv")
    lines = written.read_text().splitlines()
    assert lines[0] == "index,t,sigma,x_t_std" and len(lines) == 4
    assert EXPORTERS.entry("sigma_csv").meta["input"] == "trajectory"
    assert method.sampler_family in SAMPLERS.get("ddim_half").families  # sampled as the VDM family

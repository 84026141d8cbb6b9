"""The example plugins in plugins/, each used the way a user would: the Karras schedule
through the CLI beside a broken plugin (a named warning, nothing else), the EDM method's
preconditioning checked against the paper's formulas, sampled by the studio's samplers
and trained through the CLI, the SVG exporter from `sample --export`, the shapes
dataset as `[data] source = "shapes"`. EDM's quality figure: test_edm_quality.py."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

import studio.core.networks  # noqa: F401  (registers mlp)
import studio.core.samplers  # noqa: F401  (registers the samplers)
from studio.core.registry import DATASETS, METHODS, NETWORKS, SAMPLERS
from studio.core.schedules import make_schedule
from studio.plugins import load_plugins, unload_plugins
from tests.test_cli import run_cli

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
SVG = "{http://www.w3.org/2000/svg}"

TINY_EDM = """
[data]
source = "toy"
name = "8gaussians"
n = 1000

[schedule]
family = "karras"
steps = 20

[method]
name = "edm"
sigma_data = 1.0

[network]
kind = "mlp"
hidden = 32
depth = 1

[train]
steps = 40
batch_size = 64
log_every = 10
checkpoint_every = 40
preview_every = 0
seed = 0

[sample]
sampler = "ddim"
steps = 12
n = 64
"""


@pytest.fixture(autouse=True)
def _examples():
    unload_plugins()
    report = load_plugins(PLUGINS, entry_points=False)
    assert report.ok, report.errors
    yield
    unload_plugins()


# ----------------------------------------------------------------------------------
# karras schedule
# ----------------------------------------------------------------------------------


def test_karras_schedule_through_the_cli_is_eq_5_beside_a_broken_plugin(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "karras_schedule.py").write_text((PLUGINS / "karras_schedule.py").read_text())
    (folder / "broken_one.py").write_text("raise ImportError('needs a package that is not installed')\n")
    proc = run_cli("--plugins", folder, "schedule", "karras", "steps=18", "sigma_min=0.002", "sigma_max=80", "--json")
    assert proc.returncode == 0, proc.stderr
    # the broken file is named, once; the installed examples and the copy load without a word
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: plugin broken_one.py: ImportError: needs a package that is not installed"]
    out = json.loads(proc.stdout)
    assert out["schedule"] == {"family": "karras", "steps": 18, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}
    sigma = np.array(out["curves"]["sigma"])
    assert sigma[0] == pytest.approx(0.002) and sigma[-1] == pytest.approx(80.0)
    # the sampling grid is Karras et al. eq. 5 with N = 18, rho = 7
    sched = make_schedule("karras", steps=18)
    i = np.arange(18)
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sched.sigma(sched.sampling_times()).numpy(), expected, rtol=1e-12)
    assert expected[1] == pytest.approx(57.586, abs=1e-3)  # the paper's second level
    assert not sched.variance_preserving and sched.prior_std() == pytest.approx(80.0)
    t = torch.rand(100, dtype=torch.float64)
    torch.testing.assert_close(sched.t_of_sigma(sched.sigma(t)), t)


# ----------------------------------------------------------------------------------
# EDM method
# ----------------------------------------------------------------------------------


def edm_model(sigma_data=0.5):
    method = METHODS.get("edm")(make_schedule("karras", steps=10), sigma_data=sigma_data)
    torch.manual_seed(0)
    net = NETWORKS.get("mlp")((2,), hidden=16, depth=1)
    torch.nn.init.normal_(net.out.weight, std=0.3)  # not the zero output of a fresh net
    return method, net


def test_edm_preconditioning_is_table_1():
    method, net = edm_model(sigma_data=0.5)
    wrapped = method.wrap_network(net)
    assert method.wrap_network(wrapped) is wrapped  # wrapped once
    x = torch.randn(5, 2, dtype=torch.float32) * 3
    sigma = torch.tensor([0.002, 0.1, 0.5, 3.0, 80.0])
    lam = -2 * torch.log(sigma)
    sd = 0.5
    # the studio calls every network with x * 1 / sqrt(1 + sigma^2) on a VE process
    out = wrapped(x / torch.sqrt(1 + sigma[:, None] ** 2), lam)
    c_skip = sd**2 / (sigma**2 + sd**2)
    c_out = sigma * sd / torch.sqrt(sigma**2 + sd**2)
    c_in = 1 / torch.sqrt(sigma**2 + sd**2)
    expected = c_skip[:, None] * x + c_out[:, None] * net(c_in[:, None] * x, lam)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # c_noise = ln(sigma) / 4 is what the network's embedding takes of log_snr (with the sign flipped)
    from studio.core.networks.embedding import LOG_SNR_SCALE, clamp_log_snr

    torch.testing.assert_close(clamp_log_snr(lam) / LOG_SNR_SCALE, -torch.log(sigma) / 4)


def test_edm_loss_is_unit_weight_on_the_network_target():
    method, net = edm_model(sigma_data=0.5)
    x0 = torch.randn(4096, 2) * 0.5
    g = torch.Generator().manual_seed(1)
    out = method.loss(method.wrap_network(net), x0, generator=g)
    sigma = torch.exp(-0.5 * out.log_snr)
    ln_sigma = torch.log(sigma)
    # log-normal training levels, P_mean = -1.2, P_std = 1.2
    assert float(ln_sigma.mean()) == pytest.approx(-1.2, abs=0.06)
    assert float(ln_sigma.std()) == pytest.approx(1.2, abs=0.05)
    # redraw the same noise: lambda(sigma) ||D - y||^2 equals ||F - F_target||^2 (eq. 8, 2)
    g = torch.Generator().manual_seed(1)
    ln_s = -1.2 + 1.2 * torch.randn(4096, generator=g)
    n = torch.randn(x0.shape, generator=g)
    s, sd = torch.exp(ln_s)[:, None], 0.5
    x = x0 + s * n
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / torch.sqrt(s**2 + sd**2), 1 / torch.sqrt(s**2 + sd**2)
    f_target = (x0 - c_skip * x) / c_out
    f = net(c_in * x, -2 * ln_s)
    torch.testing.assert_close(out.loss, ((f - f_target) ** 2).mean(1), rtol=1e-4, atol=1e-5)
    assert ((0 <= out.t) & (out.t <= 1)).all()


def test_edm_loss_levels_on_another_ve_schedule_map_to_its_times():
    schedule = make_schedule("geometric", sigma_min=0.01, sigma_max=50.0)
    method = METHODS.get("edm")(schedule, sigma_data=1.0)
    out = method.loss(NETWORKS.get("mlp")((2,), hidden=8, depth=1), torch.randn(256, 2), torch.Generator().manual_seed(0))
    sigma = torch.exp(-0.5 * out.log_snr.double())
    inside = (sigma > 0.01) & (sigma < 50.0)
    torch.testing.assert_close(schedule.sigma(out.t.double())[inside], sigma[inside], rtol=1e-4, atol=0)
    assert ((out.t >= 0) & (out.t <= 1)).all() and inside.float().mean() > 0.95
    with pytest.raises(Exception, match="variance-exploding"):
        METHODS.get("edm")(make_schedule("linear"))


def test_edm_samples_with_the_studio_samplers_as_it_predicts():
    method, net = edm_model(sigma_data=1.0)
    wrapped = method.wrap_network(net)
    from studio.core.methods.base import sampler_family_of
    from studio.core.samplers import sample

    assert sampler_family_of("edm") == "ncsn"  # what the viewer and the samplers panel offer
    names = [n for n in SAMPLERS.names() if "ncsn" in SAMPLERS.get(n).families]
    assert {"ancestral", "ddim"} <= set(names)
    for name in names:  # every sampler of the family runs on the preconditioned net
        out = sample(name, method, wrapped, (8, 2), 6, generator=torch.Generator().manual_seed(0))
        assert out.shape == (8, 2) and torch.isfinite(out).all(), name
    x = torch.randn(6, 2) * 80
    for name in ("ancestral", "ddim"):
        first = next(iter(SAMPLERS.get(name)(method, wrapped, (6, 2), 10, generator=torch.Generator().manual_seed(0), x_init=x)))
        pred = method.predict(wrapped, x, torch.tensor(first.t))
        torch.testing.assert_close(first.x0_hat, pred.x0, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def edm_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edm")
    (root / "edm.toml").write_text(TINY_EDM)
    proc = run_cli("--plugins", PLUGINS, "train", root / "edm.toml", "--out", root / "run")
    assert proc.returncode == 0, proc.stderr
    return root / "run"


@pytest.mark.slow
def test_edm_trains_and_samples_through_the_cli_and_exports_an_svg_strip(edm_run, tmp_path):
    config = (edm_run / "config.toml").read_text()
    assert 'name = "edm"' in config and 'family = "karras"' in config
    svg = tmp_path / "strip.svg"
    proc = run_cli("--plugins", PLUGINS, "sample", edm_run, "--sampler", "ddim", "--steps", "12", "--n", "50",
                   "--out", tmp_path / "s.npz", "--export", f"svg_strip={svg}")
    assert proc.returncode == 0, proc.stderr
    samples = np.load(tmp_path / "s.npz")["samples"]
    assert samples.shape == (50, 2) and np.isfinite(samples).all()
    root = ET.parse(svg).getroot()
    headers = [t.text for t in root.iter(f"{SVG}text") if t.text.startswith("step")]
    assert headers[0] == "step 0" and headers[-1] == "step 11" and len(headers) == 8
    assert len(root.findall(f".//{SVG}circle")) > 50  # the points of the later panels, as vector dots
    assert not list((edm_run / "samples").glob(".export_trajectory*"))  # the temporary trajectory is gone
    bad = run_cli("--plugins", PLUGINS, "sample", edm_run, "--export", "grid_png=x.png")
    assert bad.returncode == 2 and "svg_strip" in bad.stderr  # names the trajectory exporters


# ----------------------------------------------------------------------------------
# shapes dataset
# ----------------------------------------------------------------------------------


def test_shapes_are_seeded_32x32_rgb_discs_squares_and_triangles(monkeypatch):
    shapes = DATASETS.get("shapes")
    a, b, c = shapes(n=48, seed=3), shapes(n=48, seed=3), shapes(n=48, seed=4)
    assert a.kind == "images" and a.shape == (3, 32, 32)
    assert torch.equal(a.data, b.data) and not torch.equal(a.data, c.data)
    assert float(a.data.min()) >= -1 and float(a.data.max()) <= 1
    raw = a.to_raw(a.data)
    np.testing.assert_allclose(raw * 255, np.round(raw * 255), atol=1e-3)  # the 8-bit grid
    assert set(a.meta["labels"].tolist()) == {0, 1, 2}
    # a background colour and a shape of another colour in every image, of varied sizes
    flat = raw.reshape(48, 3, -1)
    corner = raw[:, :, 0, 0][:, :, None]
    differs = (np.abs(flat - corner).max(1) > 0.1).mean(1)  # fraction of pixels off the background
    assert (differs > 0.01).all() and differs.std() > 0.02
    assert raw.reshape(48, 3, -1).mean(2).std(0).min() > 0.03  # colours vary between images
    # drawing in chunks never changes an image
    import sys

    monkeypatch.setattr(sys.modules[shapes.__module__], "CHUNK", 5)
    assert torch.equal(shapes(n=48, seed=3).data, a.data)


@pytest.mark.slow
def test_shapes_train_through_the_cli(tmp_path):
    cfg = tmp_path / "shapes.toml"
    cfg.write_text(
        '[data]\nsource = "shapes"\nn = 64\nseed = 1\n\n[schedule]\nfamily = "linear"\nsteps = 20\n\n'
        '[method]\nname = "ddpm"\n\n[network]\nkind = "mlp"\nhidden = 32\ndepth = 1\n\n'
        "[train]\nsteps = 5\nbatch_size = 8\nlog_every = 5\ncheckpoint_every = 5\npreview_every = 0\n"
    )
    proc = run_cli("--plugins", PLUGINS, "train", cfg, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert list(data["shape"]) == [3, 32, 32], data

"""Plugin discovery: the example plugin from the repository's plugins/ folder, broken
plugins reported by name, and nothing loaded from anywhere not asked for."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from studio.core.registry import SAMPLERS, SCHEDULES
from studio.core.schedules import make_schedule, schedule_from_dict
from studio.plugins import load_plugins, unload_plugins

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(autouse=True)
def _clean_registries():
    unload_plugins()
    yield
    unload_plugins()


EXAMPLES = ["edm_method.py", "example_schedule.py", "karras_schedule.py", "shapes_dataset.py", "svg_strip_exporter.py"]


def test_example_plugins_load_from_their_folder():
    report = load_plugins(PLUGINS, entry_points=False)
    assert report.ok, report.errors
    assert report.loaded == EXAMPLES  # plugins/__init__.py is skipped (leading underscore)
    assert report.added == {
        "schedules": ["shifted_cosine", "karras"], "methods": ["edm"], "datasets": ["shapes"], "exporters": ["svg_strip"],
    }
    assert "shifted_cosine" in SCHEDULES
    # a second call in the same process registers nothing twice
    again = load_plugins(PLUGINS, entry_points=False)
    assert again.ok and again.loaded == EXAMPLES and not again.added


def test_the_package_registers_the_examples_as_entry_points():
    import importlib.metadata as md

    from studio.plugins.discovery import GROUP

    eps = {ep.name: ep.value for ep in md.entry_points(group=GROUP)}
    assert {f"studio_plugins.{Path(f).stem}" for f in EXAMPLES} <= set(eps.values()), eps
    report = load_plugins()  # the installed package alone
    assert report.ok, report.errors
    assert {"karras", "shifted_cosine"} <= set(report.added["schedules"]) and "edm" in report.added["methods"]
    # the repository's folder beside them: the same files are not imported twice
    beside = load_plugins(PLUGINS)
    assert beside.ok, beside.errors
    assert set(EXAMPLES) <= set(beside.loaded) and not beside.added


def test_identical_copies_in_two_folders_load_once(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        shutil.copy(PLUGINS / "karras_schedule.py", folder)
    assert load_plugins(first, entry_points=False).added == {"schedules": ["karras"]}
    report = load_plugins(second, entry_points=False)
    assert report.ok and report.loaded == ["karras_schedule.py"] and not report.added
    # a changed copy is another plugin: registering the same name again is its error
    (second / "karras_schedule.py").write_text((PLUGINS / "karras_schedule.py").read_text() + "\n# changed\n")
    changed = load_plugins(second, entry_points=False)
    assert "already registered" in dict(changed.errors)["karras_schedule.py"]


@pytest.mark.parametrize("params", [{}, {"resolution": 8}, {"resolution": 256, "steps": 50}])
def test_plugin_schedule_passes_the_builtin_checks(params):
    load_plugins(PLUGINS)
    sched = make_schedule("shifted_cosine", **params)
    assert sched.variance_preserving and not sched.discrete
    t = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
    lam = sched.log_snr(t)
    assert torch.isfinite(lam).all()
    assert (lam[1:] < lam[:-1]).all(), "log-SNR must be strictly decreasing"
    shift = 2 * math.log(64 / params.get("resolution", 64))
    assert float(lam[0]) == pytest.approx(15.0 + shift) and float(lam[-1]) == pytest.approx(-15.0 + shift)
    alpha, sigma = sched.alpha_sigma(t)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(t))
    # at the base resolution it is the cosine schedule, alpha_bar = cos^2(pi t / 2), on a
    # time axis squeezed into [t_min, t_max] (radians) by the truncation
    if not params:
        t_min, t_max = math.atan(math.exp(-7.5)), math.atan(math.exp(7.5))
        angle = t_min + t * (t_max - t_min)
        torch.testing.assert_close(alpha**2, torch.cos(angle) ** 2)
        assert float((alpha**2 - torch.cos(math.pi * t / 2) ** 2).abs().max()) < 1e-3
    back = schedule_from_dict(json.loads(json.dumps(sched.to_dict())))
    assert type(back) is type(sched) and back.params() == sched.params()
    torch.testing.assert_close(back.log_snr(t), lam)
    assert all(torch.isfinite(v).all() for v in sched.curves(64).values())


def test_broken_plugin_is_reported_by_name_and_others_still_load(tmp_path):
    (tmp_path / "a_broken.py").write_text(
        "from studio.core.registry import SAMPLERS\n"
        "SAMPLERS.register('half_done', object())\n"
        "raise RuntimeError('boom in plugin')\n"
    )
    (tmp_path / "b_syntax.py").write_text("def (:\n")
    (tmp_path / "c_good.py").write_text(
        "from studio.core.registry import SAMPLERS\nSAMPLERS.register('from_folder', object())\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "notes.txt").write_text("not python")
    report = load_plugins(tmp_path, entry_points=False)
    assert report.loaded == ["c_good.py"]
    errors = dict(report.errors)
    assert set(errors) == {"a_broken.py", "b_syntax.py"}
    assert "RuntimeError: boom in plugin" in errors["a_broken.py"]
    assert errors["b_syntax.py"].startswith("SyntaxError")
    assert "from_folder" in SAMPLERS and "half_done" not in SAMPLERS  # no half-loaded plugin
    assert "a_broken.py" in str(report)
    unload_plugins()
    assert "from_folder" not in SAMPLERS


def test_nothing_is_loaded_without_a_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(PLUGINS.parent)  # the repository's plugins/ is right here, yet not loaded
    report = load_plugins(entry_points=False)
    assert report.ok and not report.added
    assert "shifted_cosine" not in SCHEDULES


def test_missing_folder_is_reported(tmp_path):
    report = load_plugins(tmp_path / "nowhere")
    assert not report.ok and "nowhere" in report.errors[0][0]


def test_entry_points_are_called_with_the_registries(monkeypatch):
    import importlib.metadata as md

    import studio.plugins.discovery as discovery

    seen = {}

    def contribute(registries):
        seen.update(registries)
        registries["samplers"].register("from_entry_point", object())

    def broken(registries):
        raise ValueError("bad entry point")

    eps = {
        "good": md.EntryPoint("good", "pkg:contribute", discovery.GROUP),
        "bad": md.EntryPoint("bad", "pkg:broken", discovery.GROUP),
    }
    monkeypatch.setattr(md.EntryPoint, "load", lambda self: contribute if self.name == "good" else broken)
    monkeypatch.setattr(md, "entry_points", lambda group: [eps["good"], eps["bad"]] if group == discovery.GROUP else [])
    report = load_plugins()
    assert set(seen) == {"schedules", "methods", "samplers", "networks", "datasets", "exporters"}
    assert "from_entry_point" in SAMPLERS
    assert report.errors == [("entry point bad (pkg:broken)", "ValueError: bad entry point")]

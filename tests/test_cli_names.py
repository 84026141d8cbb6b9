"""Names the command resolves: plugins come only from installed entry points and the
folder named by ``--plugins`` (a user's plugin schedule is unknown without the flag and
usable with it); shipped configs train by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import run_cli

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def test_a_plugin_schedule_needs_the_folder(tmp_path):
    # the shipped examples are entry points of the package itself; a user's own plugin
    # (here a copy of one under another name) comes only from the folder the user names
    folder = tmp_path / "mine"
    folder.mkdir()
    source = (PLUGINS / "example_schedule.py").read_text()
    assert source.count('"shifted_cosine"') >= 1
    (folder / "my_schedule.py").write_text(source.replace('"shifted_cosine"', '"my_shifted_cosine"'))
    without = run_cli("schedule", "my_shifted_cosine", "--json")
    assert without.returncode == 2
    assert "my_shifted_cosine" in without.stderr

    with_folder = run_cli("--plugins", folder, "schedule", "my_shifted_cosine", "resolution=64", "--json")
    assert with_folder.returncode == 0, with_folder.stderr
    curves = json.loads(with_folder.stdout)
    assert curves["schedule"]["family"] == "my_shifted_cosine"
    log_snr = curves["curves"]["log_snr"]
    assert all(a > b for a, b in zip(log_snr, log_snr[1:]))  # a valid schedule came back


def test_a_broken_plugin_is_a_warning_naming_the_file(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    proc = run_cli("--plugins", tmp_path, "schedule", "linear")
    assert proc.returncode == 0, proc.stderr
    assert "broken.py" in proc.stderr and "this plugin is broken" in proc.stderr


def test_a_missing_plugins_folder_is_named(tmp_path):
    proc = run_cli("--plugins", tmp_path / "nowhere", "schedule", "linear")
    assert proc.returncode == 0
    assert "nowhere" in proc.stderr


@pytest.mark.slow
def test_a_shipped_config_trains_by_name(tmp_path):
    proc = run_cli("train", "quick_toy", "--out", tmp_path / "run", "--steps", "20")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "config.toml").is_file()
    bad = run_cli("train", "no_such_preset", "--out", tmp_path / "bad")
    assert bad.returncode == 2
    assert "no_such_preset" in bad.stderr and "ddpm_toy" in bad.stderr  # lists what is shipped
    assert not (tmp_path / "bad").exists()

"""The training form's TensorBoard switch is the config's ``[train] tensorboard``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from studio.engine.config import parse_config
from studio.gui.panels.training.form import TrainingForm

CONFIGS = Path(__file__).resolve().parents[2] / "resources" / "configs"


def test_switch_round_trips_through_the_config(qtbot, state, tmp_path):
    pytest.importorskip("tensorboard")
    form = TrainingForm(state)
    qtbot.addWidget(form)
    raw = tomllib.loads((CONFIGS / "quick_toy.toml").read_text())
    form.set_config(parse_config(raw))
    assert not form.tensorboard.isChecked() and "tensorboard" not in form.config().train
    form.tensorboard.setChecked(True)
    assert form.config().train["tensorboard"] is True
    saved = form.save_toml(tmp_path / "c.toml")
    assert tomllib.loads(saved.read_text())["train"]["tensorboard"] is True

    raw["train"]["tensorboard"] = True
    other = TrainingForm(state)
    qtbot.addWidget(other)
    other.set_config(parse_config(raw))
    assert other.tensorboard.isChecked()
    other.tensorboard.setChecked(False)
    assert "tensorboard" not in other.config().train  # not carried over from the loaded file

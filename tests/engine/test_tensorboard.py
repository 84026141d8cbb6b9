"""``[train] tensorboard = true``: the run's events also land in RUN/tensorboard/, read
back here with tensorboard's own reader and checked against metrics.jsonl and the
events the job yielded."""

from __future__ import annotations

import io
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import ConfigError
from studio.engine.events import Preview, Progress
from studio.engine.export import scatter_image
from studio.engine.tensorboard_sink import loss_by_level_histogram
from studio.engine.trainer import train_job

CONFIGS = Path(__file__).resolve().parents[2] / "resources" / "configs"


def tiny_config(tensorboard: bool = True) -> dict:
    raw = tomllib.loads((CONFIGS / "quick_toy.toml").read_text())
    raw["data"]["n"] = 1000
    raw["network"].update(hidden=32)
    raw["train"].update(steps=40, batch_size=64, log_every=10, checkpoint_every=20, preview_every=20,
                        preview_steps=5, preview_n=32, warmup=5, tensorboard=tensorboard)
    return raw


def test_events_read_back_with_tensorboards_reader(tmp_path):
    pytest.importorskip("tensorboard")
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    events = list(train_job(tiny_config(), run))
    progress = [e for e in events if isinstance(e, Progress)]
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.step for p in progress] == [10, 20, 30, 40] and [p.step for p in previews] == [20, 40]

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("train/loss", "train/loss_smooth", "train/grad_norm", "train/lr", "train/samples_per_s", "memory/rss"):
        assert tag in tags["scalars"], tags

    # scalars: the metrics.jsonl rows of the logged steps (float32 in the event file)
    rows = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    for tag, key in (("train/loss", "loss"), ("train/loss_smooth", "loss_smooth"), ("train/grad_norm", "grad_norm"), ("train/lr", "lr")):
        got = acc.Scalars(tag)
        assert [s.step for s in got] == [10, 20, 30, 40]
        np.testing.assert_allclose([s.value for s in got], [rows[s.step][key] for s in got], rtol=1e-6)
    assert all(s.value > 0 for s in acc.Scalars("train/samples_per_s"))

    # loss by noise level: per log-SNR bin the mean loss of the pairs that Progress carried
    hist = acc.Histograms("train/loss_by_log_snr")
    assert [h.step for h in hist] == [10, 20, 30, 40]
    last, pairs = hist[-1].histogram_value, progress[-1]
    lam, loss = np.asarray(pairs.level_log_snr, np.float64), np.asarray(pairs.level_loss, np.float64)
    edges = np.linspace(lam.min(), lam.max(), 33)
    which = np.clip(np.searchsorted(edges, lam, side="right") - 1, 0, 31)
    expected = [loss[which == b].mean() if (which == b).any() else 0.0 for b in range(32)]
    np.testing.assert_allclose(list(last.bucket), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(list(last.bucket_limit), edges[1:], rtol=1e-12)
    assert last.min == pytest.approx(lam.min()) and last.max == pytest.approx(lam.max())
    assert [h.step for h in acc.Histograms("train/log_snr_drawn")] == [10, 20, 30, 40]
    assert acc.Histograms("train/log_snr_drawn")[-1].histogram_value.num == len(lam)

    # the previews: the 2-D points drawn as the scatter the run's preview PNGs show
    images = acc.Images("preview")
    assert [im.step for im in images] == [20, 40]
    decoded = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, scatter_image(previews[-1].points, size=384))

    assert "config" in " ".join(tags["tensors"])


def test_resume_continues_the_event_folder_without_repeats(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    list(train_job(tiny_config(), run))
    # as if killed after step 40 was logged but before its checkpoint: resume from 20
    (run / "checkpoints" / "step_00000040.safetensors").unlink()
    list(train_job(None, run, resume=True, steps=60))
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [s.step for s in acc.Scalars("train/loss")] == [10, 20, 30, 40, 50, 60]


def test_off_by_default_and_histogram_of_nothing(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(tensorboard=False)
    cfg["train"].update(steps=10, preview_every=0)
    list(train_job(cfg, run))
    assert not (run / "tensorboard").exists()
    assert tomllib.loads((run / "config.toml").read_text())["train"]["tensorboard"] is False
    assert loss_by_level_histogram(np.array([np.nan]), np.array([1.0])) is None


def test_missing_tensorboard_is_a_config_error_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"\[train\] tensorboard = true needs the tensorboard package"):
        train_job(tiny_config(), run)
    assert not run.exists()


def test_bad_value_names_the_key(tmp_path):
    cfg = tiny_config()
    cfg["train"]["tensorboard"] = "yes"
    with pytest.raises(ConfigError, match=r"\[train\] tensorboard = 'yes'"):
        train_job(cfg, tmp_path / "run")

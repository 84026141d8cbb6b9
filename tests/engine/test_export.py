"""Exports read back with numpy and PIL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import DataError
from studio.core.registry import EXPORTERS
from studio.engine import export


def test_registered():
    assert {"samples_npz", "grid_png", "strip_png", "gif", "scatter_png"} <= set(EXPORTERS.names())


def test_samples_npz(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    export.save_samples_npz(x, tmp_path / "s.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npz")["samples"], x)
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # no temporary left behind


def test_grid_png_layout_and_metadata(tmp_path):
    imgs = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    imgs[1] = 255
    export.save_grid_png(imgs, tmp_path / "g.png", rows=2, padding=1, scale=2, metadata={"seed": 7, "config": "x = 1"})
    im = Image.open(tmp_path / "g.png")
    # 2 rows x 3 cols of 8 px, padding 1: (3*8 + 4) x (2*8 + 3), then x2
    assert im.size == (2 * 28, 2 * 19)
    assert json.loads(im.text["seed"]) == 7 and im.text["config"] == "x = 1"
    a = np.asarray(im)
    assert a[2 * 1 + 1, 2 * (1 + 8 + 1) + 1].tolist() == [255, 255, 255]  # the white image is second
    assert a[2 * 1 + 1, 2 * 1 + 1].tolist() == [0, 0, 0]


def test_float_images_and_grey(tmp_path):
    x = np.full((4, 1, 8, 8), 0.5, dtype=np.float32)
    export.save_grid_png(x, tmp_path / "g.png", padding=0)
    a = np.asarray(Image.open(tmp_path / "g.png"))
    assert a.shape == (16, 16) and (a == 128).all()


def test_strip_and_gif(tmp_path):
    frames = [np.full((3, 8, 8, 1), 40 * k, dtype=np.uint8) for k in range(4)]
    export.save_strip_png(frames, tmp_path / "s.png", padding=0)
    a = np.asarray(Image.open(tmp_path / "s.png"))
    assert a.shape == (3 * 8, 4 * 8)  # a row per sample, a column per step
    assert a[0, 3 * 8] == 120
    mosaics = [export.make_grid(f) for f in frames]
    export.save_gif(mosaics, tmp_path / "a.gif", duration_ms=20)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 4


def test_scatter(tmp_path):
    pts = np.random.default_rng(0).standard_normal((200, 2))
    export.save_scatter_png(pts, tmp_path / "p.png", size=128)
    a = np.asarray(Image.open(tmp_path / "p.png"))
    assert a.shape == (128, 128, 3) and (a < 200).any()
    with pytest.raises(DataError, match=r"\(5, 3\)"):
        export.save_scatter_png(np.zeros((5, 3)), tmp_path / "q.png")

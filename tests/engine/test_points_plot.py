"""2-D samples exported as a plot: axes with round ticks, the held-out data in grey under
the samples, dots that read at the figure's size."""

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import DataError
from studio.engine.export import REFERENCE_COLOR, SAMPLE_COLOR, nice_ticks, plot_bounds, points_plot, save_points_png


def test_nice_ticks_are_round_and_inside():
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(-12.3, 15.4) == pytest.approx([-10.0, -5.0, 0.0, 5.0, 10.0, 15.0])


def test_bounds_are_square_and_ignore_a_few_far_samples():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(2000, 2)) * [3.0, 1.0]
    p[:3] = 1e6
    x0, x1, y0, y1 = plot_bounds(p)
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 - x0 < 30


def colour_mask(img, colour):
    return (img == np.array(colour, np.uint8)).all(-1)


def test_samples_over_grey_reference_where_they_are():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(1000, 2)) * 0.1 + [1.0, 1.0]  # upper right (y points up)
    reference = rng.normal(size=(1000, 2)) * 0.1 - [1.0, 1.0]  # lower left
    img = points_plot(samples, reference, size=1000, bounds=(-2, 2, -2, 2))
    assert img.shape == (1000, 1000, 3)
    blue, grey = colour_mask(img, SAMPLE_COLOR), colour_mask(img, REFERENCE_COLOR)
    h, w = blue.shape
    assert blue[: h // 2, w // 2 :].sum() > 20 * blue[h // 2 :, : w // 2].sum()  # samples upper right
    assert grey[h // 2 :, : w // 2].sum() > 20 * max(1, grey[: h // 2, w // 2 :].sum())  # data lower left
    # dots are a few pixels across at this size, not single pixels
    assert blue.sum() > 1000 * 4


def test_save_points_png_with_metadata(tmp_path):
    out = save_points_png(np.zeros((5, 2)), tmp_path / "p.png", size=600, title="ddim", metadata={"seed": 3})
    with Image.open(out) as im:
        assert im.size == (600, 600) and im.text["seed"] == "3"
    with pytest.raises(DataError, match="shape"):
        points_plot(np.zeros((5, 3)))

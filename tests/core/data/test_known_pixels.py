"""Valid but unusual input loads right, not only without a crash: known pixel values
written in every format the loaders accept come back equal up to quantisation, with
the number of levels (256, 65536) the data was stored on."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from studio.core.data import load_dataset
from studio.core.data.normalise import normalise
from studio.core.errors import ConfigError

RNG = np.random.default_rng(14)
S = 16  # images are written at the loaded resolution: no resize between file and tensor


def raw_pixels(ds) -> np.ndarray:
    """The loaded images in [0, 1], (N, H, W, C)."""
    return np.moveaxis(ds.to_raw(ds.data), 1, -1)


def folder_of(tmp_path, *images: Image.Image, suffix: str = ".png", **save) -> str:
    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    for i, im in enumerate(images):
        im.save(folder / f"{i:02d}{suffix}", **save)
    return str(folder)


def test_8bit_grey_png_is_exact(tmp_path):
    v = RNG.integers(0, 256, (S, S), dtype=np.uint8)
    ds = load_dataset("folder", path=folder_of(tmp_path, Image.fromarray(v, "L")), resolution=S)
    assert ds.shape == (1, S, S) and ds.meta["levels"] == 256
    assert np.abs(raw_pixels(ds)[0, ..., 0] - v / 255.0).max() < 1e-6


def test_16bit_grey_png_of_noise_is_scaled_not_clipped(tmp_path):
    """PIL's convert() clips I;16 at 255: noise over 0..65535 loaded as 99% white."""
    v = RNG.integers(0, 65536, (S, S), dtype=np.uint16)
    im = Image.fromarray(v)
    assert im.mode.startswith("I;16")
    ds = load_dataset("folder", path=folder_of(tmp_path, im), resolution=S)
    got = raw_pixels(ds)[0, ..., 0]
    assert ds.shape == (1, S, S) and ds.meta["levels"] == 65536
    assert np.abs(got - v / 65535.0).max() < 0.5 / 65535  # exact up to the 16-bit grid
    assert abs(got.mean() - 0.5) < 0.05 and (got > 0.99).mean() < 0.05


def test_16bit_png_resized_keeps_its_scale(tmp_path):
    v = np.full((2 * S, 2 * S), 20000, np.uint16)
    ds = load_dataset("folder", path=folder_of(tmp_path, Image.fromarray(v)), resolution=S)
    assert np.abs(raw_pixels(ds) - 20000 / 65535).max() < 1e-4


def test_rgb_and_rgba_png(tmp_path):
    rgb = RNG.integers(0, 256, (S, S, 3), dtype=np.uint8)
    ds = load_dataset("folder", path=folder_of(tmp_path, Image.fromarray(rgb, "RGB")), resolution=S)
    assert ds.shape == (3, S, S) and np.abs(raw_pixels(ds)[0] - rgb / 255.0).max() < 1e-6

    rgba = RNG.integers(0, 256, (S, S, 4), dtype=np.uint8)
    (tmp_path / "rgba").mkdir()
    ds = load_dataset("folder", path=folder_of(tmp_path / "rgba", Image.fromarray(rgba, "RGBA")), resolution=S)
    a = rgba[..., 3:] / 255.0
    over_white = rgba[..., :3] / 255.0 * a + (1 - a)  # composited over white, as a viewer shows it
    assert np.abs(raw_pixels(ds)[0] - over_white).max() <= 1.01 / 255


def test_palette_with_transparency(tmp_path):
    palette = [0, 0, 0, 255, 0, 0, 0, 128, 255, 10, 200, 30]
    index = RNG.integers(0, 4, (S, S), dtype=np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(palette + [0] * (768 - len(palette)))
    im.info["transparency"] = 0
    ds = load_dataset("folder", path=folder_of(tmp_path, im, transparency=0), resolution=S)
    colours = np.array(palette, float).reshape(-1, 3) / 255.0
    expected = colours[index]
    expected[index == 0] = 1.0  # the transparent entry shows the white behind it
    assert ds.shape == (3, S, S) and np.abs(raw_pixels(ds)[0] - expected).max() < 1e-6


def blocks(colours: np.ndarray, block: int = 8) -> np.ndarray:
    """Flat 8x8 blocks (what JPEG keeps almost exactly) from a (h, w, 3) grid of colours."""
    return np.kron(colours, np.ones((block, block, 1))).astype(np.uint8)


def test_cmyk_jpeg_loads_as_its_colours(tmp_path):
    rgb = blocks(RNG.integers(0, 256, (2, 2, 3)))
    cmyk = Image.fromarray(rgb, "RGB").convert("CMYK")
    ds = load_dataset("folder", path=folder_of(tmp_path, cmyk, suffix=".jpg", quality=100, subsampling=0), resolution=S)
    err = np.abs(raw_pixels(ds)[0] - rgb / 255.0)
    assert ds.shape == (3, S, S) and err.mean() < 2 / 255 and err.max() < 12 / 255


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    stored = np.zeros((S, S, 3), np.uint8)
    stored[:, : S // 2] = (250, 250, 250)  # left half white as stored
    im = Image.fromarray(stored, "RGB")
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: the viewer rotates the stored pixels 90 degrees clockwise
    ds = load_dataset("folder", path=folder_of(tmp_path, im, suffix=".jpg", quality=100, subsampling=0, exif=exif.tobytes()),
                      resolution=S)
    upright = np.rot90(stored, k=-1) / 255.0  # the white half is now on top
    got = raw_pixels(ds)[0]
    assert np.abs(got - upright).mean() < 3 / 255
    assert np.abs(got - stored / 255.0).mean() > 0.3  # as stored it would be half wrong


@pytest.mark.parametrize("dtype, scale, levels", [(np.uint8, 255, 256), (np.uint16, 65535, 65536), (np.float32, 1, None)])
def test_npy_pixels(tmp_path, dtype, scale, levels):
    if dtype is np.float32:
        v = RNG.random((3, S, S, 3), dtype=np.float32)
    else:
        v = RNG.integers(0, scale + 1, (3, S, S, 3)).astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, v)
    ds = load_dataset("array", path=str(path))
    assert ds.shape == (3, S, S) and ds.meta.get("levels") == levels
    assert np.abs(raw_pixels(ds) - v.astype(np.float64) / scale).max() < (0.5 / scale if levels else 1e-6)


def test_hdf5_pixels(tmp_path):
    v = RNG.integers(0, 65536, (4, S, S), dtype=np.uint16)
    f = RNG.random((4, 1, S, S)) * 2 - 1  # floats in [-1, 1]
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as h:
        h["scan/counts"] = v
        h["scan/signed"] = f
    ds = load_dataset("hdf5", path=str(path), key="scan/counts")
    assert ds.meta["levels"] == 65536 and np.abs(raw_pixels(ds)[..., 0] - v / 65535.0).max() < 0.5 / 65535
    ds = load_dataset("hdf5", path=str(path), key="/scan/signed")
    assert ds.meta["pixel_range"] == "[-1, 1]" and np.abs(raw_pixels(ds)[:, ..., 0] - (f[:, 0] + 1) / 2).max() < 1e-6


def test_normalisation_is_a_data_key(tmp_path):
    from studio.engine.config import load_data, parse_config

    v = RNG.integers(0, 256, (5, S, S), dtype=np.uint8)
    np.save(tmp_path / "x.npy", v)
    section = {"source": "array", "path": str(tmp_path / "x.npy")}
    for mode in ("default", "unit_max", "none"):
        ds = load_data(parse_config({"data": {**section, "normalisation": mode}}))
        assert np.allclose(raw_pixels(ds)[..., 0], v / 255.0, atol=1e-6)  # the same raw data ...
        lo, hi = float(ds.data.min()), float(ds.data.max())  # ... seen through another scale
        assert {"default": (-1, 1), "unit_max": (0, 1), "none": (0, 1)}[mode] == pytest.approx((lo, hi), abs=0.01)
    assert float(normalise(ds, "unit_max").data.abs().max()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"\[data\] normalisation = 'zscore'"):
        parse_config({"data": {**section, "normalisation": "zscore"}})

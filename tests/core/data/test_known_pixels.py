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


def png16(folder, name: str, v: np.ndarray, exif_orientation: int | None = None) -> None:
    """A 16-bit PNG of ``v`` (H, W, planes) written by pypng; an eXIf chunk when given."""
    import png

    h, w, planes = v.shape
    buf = io.BytesIO()
    png.Writer(w, h, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16).write(buf, v.reshape(h, w * planes))
    data = buf.getvalue()
    if exif_orientation is not None:  # before IEND: a PNG eXIf chunk holds the TIFF bytes
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        chunks = list(png.Reader(bytes=data).chunks())
        chunks.insert(-1, (b"eXIf", exif.tobytes()[6:]))  # without the JPEG "Exif\0\0" prefix
        buf = io.BytesIO()
        png.write_chunks(buf, chunks)
        data = buf.getvalue()
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)


def test_16bit_colour_png_keeps_its_low_byte(tmp_path):
    """Pillow opens a 48-bit PNG as 8-bit RGB (the high byte of each sample): read at full depth."""
    v = RNG.integers(0, 65536, (S, S, 3), dtype=np.uint16)
    png16(tmp_path / "rgb16", "a.png", v)
    with Image.open(tmp_path / "rgb16" / "a.png") as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), (v >> 8).astype(np.uint8))  # what PIL gives
    ds = load_dataset("folder", path=str(tmp_path / "rgb16"), resolution=S)
    assert ds.shape == (3, S, S) and ds.meta["levels"] == 65536
    got = raw_pixels(ds)[0]
    assert np.abs(got - v / 65535.0).max() < 0.5 / 65535  # exact up to the 16-bit grid
    assert np.abs(got - (v >> 8) / 255.0).max() > 100 / 65535  # not the 8-bit values PIL reads


def test_16bit_rgba_and_grey_alpha_png_over_white(tmp_path):
    rgba = RNG.integers(0, 65536, (S, S, 4), dtype=np.uint16)
    png16(tmp_path / "rgba16", "a.png", rgba)
    ds = load_dataset("folder", path=str(tmp_path / "rgba16"), resolution=S)
    a = rgba[..., 3:] / 65535.0
    assert ds.meta["levels"] == 65536
    assert np.abs(raw_pixels(ds)[0] - (rgba[..., :3] / 65535.0 * a + 1 - a)).max() < 1e-6

    la = RNG.integers(0, 65536, (S, S, 2), dtype=np.uint16)
    png16(tmp_path / "la16", "a.png", la)
    ds = load_dataset("folder", path=str(tmp_path / "la16"), resolution=S)
    a = la[..., 1] / 65535.0
    assert ds.shape == (1, S, S) and np.abs(raw_pixels(ds)[0, ..., 0] - (la[..., 0] / 65535.0 * a + 1 - a)).max() < 1e-6


def test_16bit_colour_png_turned_by_exif_and_mixed_with_8bit(tmp_path):
    v = RNG.integers(0, 65536, (S, S, 3), dtype=np.uint16)
    png16(tmp_path / "mix", "a.png", v, exif_orientation=6)  # stored turned: shown rotated 90° clockwise
    eight = RNG.integers(0, 256, (S, S, 3), dtype=np.uint8)
    Image.fromarray(eight, "RGB").save(tmp_path / "mix" / "b.png")
    ds = load_dataset("folder", path=str(tmp_path / "mix"), resolution=S)
    got = raw_pixels(ds)
    assert ds.meta["levels"] == 65536  # 8-bit k/255 lies on the 16-bit grid too (257k/65535)
    assert np.abs(got[0] - np.rot90(v, k=-1) / 65535.0).max() < 0.5 / 65535
    assert np.abs(got[1] - eight / 255.0).max() < 1e-6


def test_truncated_16bit_colour_png_is_skipped_by_name(tmp_path):
    png16(tmp_path / "cut", "a.png", RNG.integers(0, 65536, (S, S, 3), dtype=np.uint16))
    good = RNG.integers(0, 65536, (S, S, 3), dtype=np.uint16)
    png16(tmp_path / "cut", "b.png", good)
    data = (tmp_path / "cut" / "a.png").read_bytes()
    (tmp_path / "cut" / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="a.png"):
        ds = load_dataset("folder", path=str(tmp_path / "cut"), resolution=S)
    assert ds.meta["files"] == ["b.png"] and ds.meta["skipped"][0][0] == "a.png"
    assert np.abs(raw_pixels(ds)[0] - good / 65535.0).max() < 0.5 / 65535

"""File data sources on real files written to tmp_path: folder, array, hdf5, digits."""

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from studio.core.data import LoadCancelled, list_hdf5_datasets, load_dataset
from studio.core.errors import ConfigError, DataError
from studio.core.registry import DATASETS

RNG = np.random.default_rng(0)


def _pixels(h, w, c=3):
    return RNG.integers(0, 256, size=(h, w, c), dtype=np.uint8)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_pixels(16, 16)).save(folder / "a.png")
    Image.fromarray(_pixels(20, 20)).save(folder / "b.jpg", quality=95)
    Image.fromarray(_pixels(16, 16)).save(folder / "sub" / "c.JPEG")
    Image.fromarray(_pixels(30, 17)).save(folder / "odd.png")  # not square: center crop
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


# --- folder ---------------------------------------------------------------------------------


def test_folder_loads_good_files_and_names_the_corrupt_one(image_folder):
    with pytest.warns(UserWarning, match="broken.png"):
        ds = load_dataset("folder", path=str(image_folder), resolution=8)
    assert ds.kind == "images" and ds.data.dtype == torch.float32
    assert ds.data.shape == (4, 3, 8, 8)
    assert float(ds.data.min()) >= -1.0 and float(ds.data.max()) <= 1.0
    assert [f for f, _ in ds.meta["skipped"]] == ["broken.png"]
    assert "odd.png" in ds.meta["files"] and "sub/c.JPEG" in ds.meta["files"]


def test_folder_center_crops_before_resizing(tmp_path):
    # left third black, middle white, right third black: the crop keeps the white middle
    img = np.zeros((10, 30), np.uint8)
    img[:, 10:20] = 255
    Image.fromarray(img).save(tmp_path / "wide.png")
    ds = load_dataset("folder", path=str(tmp_path), resolution=10)
    assert ds.shape == (1, 10, 10)  # greyscale source -> 1 channel
    assert ds.to_uint8(ds.data).min() == 255


def test_folder_channels_and_limit(image_folder):
    ds = load_dataset("folder", path=str(image_folder), resolution=8, channels=1, limit=2)  # a.png, b.jpg
    assert ds.data.shape == (2, 1, 8, 8)


def test_folder_with_no_readable_file_names_the_folder(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DataError, match=str(tmp_path.name)):
        load_dataset("folder", path=str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty"):
        load_dataset("folder", path=str(empty))


def test_folder_progress_and_cancel(image_folder):
    seen = []
    with pytest.warns(UserWarning):
        load_dataset("folder", path=str(image_folder), resolution=8, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 5) for i in range(1, 6)]  # 5 candidate files looked at, 4 of them read
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(LoadCancelled):
        load_dataset("folder", path=str(image_folder), resolution=8, cancelled=cancelled)


# --- array ---------------------------------------------------------------------------------


def test_npy_points_are_standardised(tmp_path):
    pts = RNG.normal(loc=[5.0, -3.0, 0.0], scale=[2.0, 0.5, 1.0], size=(200, 3))
    np.save(tmp_path / "pts.npy", pts)
    ds = load_dataset("array", path=str(tmp_path / "pts.npy"))
    assert ds.kind == "points" and ds.shape == (3,)
    assert torch.allclose(ds.data.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(ds.data.std(0, unbiased=False), torch.ones(3), atol=1e-4)
    np.testing.assert_allclose(ds.to_raw(ds.data), pts, atol=1e-4)


def test_npz_key_and_wrong_key(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, train=RNG.normal(size=(50, 2)), test=RNG.normal(size=(10, 2)))
    assert len(load_dataset("array", path=str(path), key="test")) == 10
    with pytest.raises(DataError, match="available: train, test") as e:
        load_dataset("array", path=str(path), key="valid")
    assert "data.npz" in str(e.value) and "'valid'" in str(e.value)
    with pytest.raises(DataError, match="set 'key'"):
        load_dataset("array", path=str(path))


@pytest.mark.parametrize(
    "layout, shape",
    [("NHW", (6, 12, 12)), ("NHWC", (6, 12, 12, 3)), ("NCHW", (6, 3, 12, 12)), ("NHWC", (6, 12, 12, 1))],
)
@pytest.mark.parametrize("dtype", ["uint8", "float01", "float11", "float255"])
def test_array_images_in_every_layout_and_range(tmp_path, layout, shape, dtype):
    raw = RNG.integers(0, 256, size=shape).astype(np.uint8)
    array = {
        "uint8": raw,
        "float01": raw / 255.0,
        "float11": raw / 127.5 - 1.0,
        "float255": raw.astype(np.float32),
    }[dtype]
    np.save(tmp_path / "img.npy", array)
    ds = load_dataset("array", path=str(tmp_path / "img.npy"))
    channels = 1 if layout == "NHW" else (shape[-1] if layout == "NHWC" else shape[1])
    assert ds.kind == "images" and ds.data.shape == (6, channels, 12, 12)
    assert ds.meta["layout"] == layout
    # to_uint8 gives back the original pixels (N, H, W, C)
    expect = raw if layout != "NCHW" else np.moveaxis(raw, 1, -1)
    expect = expect[..., None] if layout == "NHW" else expect
    np.testing.assert_array_equal(ds.to_uint8(ds.data), expect)


def test_array_resolution_and_channels(tmp_path):
    np.save(tmp_path / "img.npy", RNG.integers(0, 256, size=(4, 20, 24, 3), dtype=np.uint8))
    ds = load_dataset("array", path=str(tmp_path / "img.npy"), resolution=8, channels=1)
    assert ds.data.shape == (4, 1, 8, 8)


@pytest.mark.parametrize("shape", [(10,), (4, 5, 6, 7), (2, 3, 4, 5, 6)])
def test_wrong_shapes_name_file_and_shape(tmp_path, shape):
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
    with pytest.raises(DataError) as e:
        load_dataset("array", path=str(tmp_path / "bad.npy"))
    msg = str(e.value)
    assert "bad.npy" in msg and str(shape) in msg and "N x C x H x W" in msg


def test_bad_pixel_range_and_nan(tmp_path):
    np.save(tmp_path / "big.npy", np.full((2, 8, 8), 1000.0))
    with pytest.raises(DataError, match=r"big.npy.*\[1000, 1000\]"):
        load_dataset("array", path=str(tmp_path / "big.npy"))
    pts = np.zeros((5, 2))
    pts[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", pts)
    with pytest.raises(DataError, match="nan.npy"):
        load_dataset("array", path=str(tmp_path / "nan.npy"))


def test_missing_and_corrupt_files(tmp_path):
    for source in ("array", "hdf5", "folder"):
        with pytest.raises(DataError, match="nowhere"):
            load_dataset(source, path=str(tmp_path / "nowhere.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        load_dataset("array", path=str(tmp_path / "junk.npz"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5"):
        load_dataset("hdf5", path=str(tmp_path / "junk.h5"))


def test_array_limit_progress_cancel(tmp_path):
    np.save(tmp_path / "pts.npy", RNG.normal(size=(3000, 2)))
    seen = []
    ds = load_dataset("array", path=str(tmp_path / "pts.npy"), n=2500, progress=lambda d, t: seen.append((d, t)))
    assert len(ds) == 2500 and seen == [(1024, 2500), (2048, 2500), (2500, 2500)]
    with pytest.raises(LoadCancelled):
        load_dataset("array", path=str(tmp_path / "pts.npy"), cancelled=lambda: True)


# --- hdf5 --------------------------------------------------------------------------------------


@pytest.fixture
def h5_file(tmp_path):
    path = tmp_path / "set.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train/images", data=RNG.integers(0, 256, size=(300, 16, 16, 3), dtype=np.uint8))
        f.create_dataset("train/labels", data=np.arange(300))
        f.create_dataset("points", data=RNG.normal(size=(40, 2)).astype(np.float32))
    return path


def test_hdf5_nested_dataset(h5_file):
    seen = []
    ds = load_dataset("hdf5", path=str(h5_file), key="train/images", limit=280, progress=lambda d, t: seen.append(d))
    assert ds.data.shape == (280, 3, 16, 16) and ds.meta["key"] == "train/images"
    assert seen == [256, 280]
    with h5py.File(h5_file) as f:
        np.testing.assert_array_equal(ds.to_uint8(ds.data), f["train/images"][:280])
    assert load_dataset("hdf5", path=str(h5_file), key="/points").kind == "points"


def test_hdf5_wrong_key_lists_datasets(h5_file):
    with pytest.raises(DataError) as e:
        load_dataset("hdf5", path=str(h5_file), key="train/imgs")
    msg = str(e.value)
    assert "set.h5" in msg and "'train/imgs'" in msg
    assert "train/images (300, 16, 16, 3) uint8" in msg and "points" in msg
    with pytest.raises(DataError, match="train/labels"):
        load_dataset("hdf5", path=str(h5_file), key="train/labels")  # 1-D: not an allowed shape


def test_list_hdf5_datasets(h5_file):
    assert list_hdf5_datasets(h5_file) == [
        ("points", (40, 2), "float32"),
        ("train/images", (300, 16, 16, 3), "uint8"),
        ("train/labels", (300,), "int64"),
    ]


# --- digits and the dispatcher --------------------------------------------------------------------


def test_digits_shape_range_and_round_trip():
    ds = load_dataset("digits")
    assert ds.data.shape == (1797, 1, 8, 8) and ds.meta["levels"] == 17
    assert float(ds.data.min()) == -1.0 and float(ds.data.max()) == 1.0
    raw = ds.to_raw(ds.data)
    np.testing.assert_allclose(raw * 16, np.round(raw * 16), atol=1e-5)  # 17 grey levels kept
    u8 = ds.to_uint8(ds.data)
    assert u8.shape == (1797, 8, 8, 1) and u8.dtype == np.uint8
    back = ds.from_raw(np.moveaxis(u8, -1, 1) / 255.0)
    assert float((back - ds.data).abs().max()) <= 1.0 / 255 + 1e-6
    up = load_dataset("digits", resolution=16, channels=3, limit=10)
    assert up.data.shape == (10, 3, 16, 16)
    assert float(up.data.min()) >= -1.0 and float(up.data.max()) <= 1.0


def test_dispatcher_errors_name_key_and_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match="'nope'.*allowed: toy, digits, array, hdf5, folder"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="'colour'.*allowed: resolution, channels, limit"):
        load_dataset("digits", colour=3)
    with pytest.raises(ConfigError, match="channels = 2.*1, 3"):
        load_dataset("digits", channels=2)
    with pytest.raises(ConfigError, match="resolution"):
        load_dataset("digits", resolution=0)
    with pytest.raises(ConfigError, match="give only one"):
        load_dataset("digits", n=3, limit=4)
    with pytest.raises(ConfigError, match="data name = 'blob'.*allowed"):
        load_dataset("toy", name="blob")


def test_every_source_is_registered():
    for name in ("digits", "folder", "array", "hdf5", "swiss_roll", "moons", "8gaussians", "checkerboard", "rings", "spiral"):
        assert name in DATASETS


def test_dispatcher_builds_toy_sets():
    ds = load_dataset("toy", name="moons", n=300, seed=1)
    assert ds.kind == "points" and ds.data.shape == (300, 2)
    torch.testing.assert_close(ds.data, load_dataset("moons", limit=300, seed=1).data)
    assert len(load_dataset("toy", name="rings", n=50, progress=lambda d, t: None)) == 50
    with pytest.raises(ConfigError, match="'resolution'.*allowed: n, seed"):
        load_dataset("toy", name="moons", resolution=8)

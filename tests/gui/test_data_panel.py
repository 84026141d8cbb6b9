"""The data panel loading every source from real files through its widgets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from studio.core.data import toy_names
from studio.gui.panels.data_panel import DataPanel


@pytest.fixture
def panel(qtbot, state):
    w = DataPanel(state)
    qtbot.addWidget(w)
    w.resize(420, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def choose(panel, source, name=None):
    panel.select_source(source, name)


def load_and_wait(panel, qtbot):
    panel.load()
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)


def set_path(panel, path):
    panel.path.setText(str(path))
    panel.path.editingFinished.emit()


def test_toy_sets_come_from_the_registry(panel, state, qtbot):
    listed = [name for source, name in panel._sources.values() if source == "toy"]
    assert listed == toy_names()
    choose(panel, "toy", "rings")
    panel.n.setValue(500)
    load_and_wait(panel, qtbot)
    assert state.dataset.name == "rings" and len(state.dataset) == 500
    assert state.data_options == {"source": "toy", "name": "rings", "n": 500, "seed": 0}
    assert panel.preview.currentWidget() is panel.scatter
    assert len(panel.scatter.scatter.data) == 500
    assert "500" in panel.stats.text()


def test_digits_with_resolution_and_channels(panel, state, qtbot):
    choose(panel, "digits")
    panel.resolution.setCurrentIndex(panel.resolution.findData(16))
    panel.channels.setCurrentIndex(panel.channels.findData(3))
    panel.limit.setValue(50)
    load_and_wait(panel, qtbot)
    assert state.dataset.shape == (3, 16, 16) and len(state.dataset) == 50
    assert panel.preview.currentWidget() is panel.images
    assert panel.images.image.image.shape[-1] == 3  # the mosaic follows the channels
    panel.resolution.setCurrentIndex(panel.resolution.findData(8))
    panel.channels.setCurrentIndex(panel.channels.findData(1))
    load_and_wait(panel, qtbot)
    assert state.dataset.shape == (1, 8, 8) and panel.images.image.image.ndim == 2


def test_png_folder_with_a_corrupt_file(panel, state, qtbot, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"this is not a png")
    choose(panel, "folder")
    set_path(panel, folder)
    panel.resolution.setCurrentIndex(panel.resolution.findData(16))
    load_and_wait(panel, qtbot)
    assert state.dataset.shape == (3, 16, 16) and len(state.dataset) == 6
    assert panel.banner.level == "warning" and "broken.png" in panel.banner.text()


def test_unreadable_folder_is_an_error_naming_it(panel, state, qtbot, tmp_path):
    folder = tmp_path / "allbad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"junk")
    before = state.dataset
    choose(panel, "folder")
    set_path(panel, folder)
    load_and_wait(panel, qtbot)
    assert panel.banner.level == "error" and "a.png" in panel.banner.text()
    assert state.dataset is before  # the last good data stays
    choose(panel, "toy", toy_names()[0])  # and the panel still works
    load_and_wait(panel, qtbot)
    assert state.dataset.name == toy_names()[0]


def test_npy_points_and_normalisation(panel, state, qtbot, tmp_path):
    pts = np.random.default_rng(1).normal(5.0, 3.0, (400, 2)).astype(np.float32)
    np.save(tmp_path / "pts.npy", pts)
    choose(panel, "array")
    set_path(panel, tmp_path / "pts.npy")
    load_and_wait(panel, qtbot)
    assert state.dataset.kind == "points" and len(state.dataset) == 400
    assert abs(float(state.dataset.data.mean())) < 1e-4  # standardised by default
    panel.normalisation.setCurrentIndex(panel.normalisation.findData("none"))
    load_and_wait(panel, qtbot)
    np.testing.assert_allclose(state.dataset.data.numpy(), pts, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(state.dataset.to_raw(state.dataset.data), pts, rtol=1e-5, atol=1e-4)
    x, _ = panel.scatter.scatter.getData()
    assert x.mean() == pytest.approx(pts[:, 0].mean(), abs=1e-3)  # the preview followed


def test_npz_with_key_picker(panel, state, qtbot, tmp_path):
    imgs = np.random.default_rng(2).integers(0, 255, (30, 12, 12), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", labels=np.arange(30), images=imgs)
    choose(panel, "array")
    set_path(panel, tmp_path / "d.npz")
    assert [panel.key.itemData(i) for i in range(panel.key.count())] == ["labels", "images"]
    panel.key.setCurrentIndex(1)
    load_and_wait(panel, qtbot)
    assert state.dataset.shape == (1, 12, 12) and state.data_options["key"] == "images"


def test_hdf5_nested_dataset_from_picker(panel, state, qtbot, tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["train/labels"] = np.arange(25)
        f["train/deep/images"] = np.random.default_rng(3).random((25, 3, 10, 10)).astype(np.float32)
    choose(panel, "hdf5")
    set_path(panel, path)
    keys = [panel.key.itemData(i) for i in range(panel.key.count())]
    assert "train/deep/images" in keys and "train/labels" in keys
    assert panel.key.currentData() == "train/deep/images"  # the picker preselects image-like data
    load_and_wait(panel, qtbot)
    assert state.dataset.shape == (3, 10, 10) and state.data_options["key"] == "train/deep/images"
    panel.key.setCurrentIndex(keys.index("train/labels"))  # a 1-D array cannot be data
    load_and_wait(panel, qtbot)
    assert panel.banner.level == "error" and "train/labels" in panel.banner.text()
    assert state.dataset.shape == (3, 10, 10)


def test_wrong_shape_and_corrupt_array_are_named(panel, state, qtbot, tmp_path):
    np.save(tmp_path / "odd.npy", np.zeros((4, 5, 6, 7, 8), np.float32))
    choose(panel, "array")
    set_path(panel, tmp_path / "odd.npy")
    load_and_wait(panel, qtbot)
    assert panel.banner.level == "error" and "odd.npy" in panel.banner.text()
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    set_path(panel, tmp_path / "corrupt.npy")
    load_and_wait(panel, qtbot)
    assert panel.banner.level == "error" and "corrupt.npy" in panel.banner.text()
    set_path(panel, tmp_path / "missing.npy")
    load_and_wait(panel, qtbot)
    assert "missing.npy" in panel.banner.text()


def test_cancel_keeps_previous_data(panel, state, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        Image.fromarray(np.full((8, 8), i * 5, np.uint8)).save(folder / f"{i:03d}.png")
    import studio.core.data.images as images

    read = images._read_image

    def slow_read(path, resolution):  # slow enough that cancel lands mid-folder
        import time
        time.sleep(0.02)
        return read(path, resolution)

    monkeypatch.setattr(images, "_read_image", slow_read)
    before = state.dataset
    choose(panel, "folder")
    set_path(panel, folder)
    panel.load()
    qtbot.waitUntil(lambda: len(panel._progress) == 2, timeout=5000)
    assert panel.cancel_button.isVisible()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.loading, timeout=5000)
    assert state.dataset is before and "cancelled" in panel.banner.text()

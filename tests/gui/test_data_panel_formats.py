"""The Data panel on the datasets users already have: IDX, CIFAR binary batches, an
ImageFolder tree and an .npz with labels, each previewed a column per class."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.gui.panels.data_panel import source_for_file
from tests.core.data.test_user_formats import write_cifar, write_idx
from tests.gui.test_data_panel import panel  # noqa: F401  (the fixture: a shown DataPanel)

RNG = np.random.default_rng(1)


def load(panel, qtbot, source, path, **widgets):
    panel.select_source(source)
    panel.path.setText(str(path))
    panel.path.editingFinished.emit()
    for name, value in widgets.items():
        combo = getattr(panel, name)
        combo.setCurrentIndex(combo.findData(value))
    panel.load()
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)


def titles(panel):
    return [label.toPlainText() for label in panel.images._labels if label.isVisible()]


def test_cifar_folder_split_and_class_columns(panel, state, qtbot, tmp_path):
    x = RNG.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    write_cifar(tmp_path / "data_batch_1.bin", x, [0, 2, 2, 9])
    write_cifar(tmp_path / "test_batch.bin", x[:1], [1])
    (tmp_path / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    load(panel, qtbot, "cifar", tmp_path, resolution=16)
    assert panel.last_error == "" and state.data_options == {"source": "cifar", "path": str(tmp_path), "split": "train",
                                                             "resolution": 16}
    assert state.dataset.shape == (3, 16, 16) and len(state.dataset) == 4
    assert titles(panel) == ["c0", "c2", "c9"]  # a column per class present, named from batches.meta.txt
    # 2 rows (class 2 has two images) x 3 columns of 16 x 16, 1 px between them
    assert panel.images.image.image.shape[:2] == (2 * 16 + 1, 3 * 16 + 2)
    assert "3 classes" in panel.stats.text()
    panel.split.setCurrentIndex(panel.split.findData("test"))
    panel.load()
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)
    assert len(state.dataset) == 1 and titles(panel) == ["c1"]


def test_bad_batch_is_named_and_the_data_stays(panel, state, qtbot, tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x01" * 5000)
    before = state.dataset
    load(panel, qtbot, "cifar", tmp_path)
    assert "data_batch_1.bin: truncated record" in panel.last_error
    assert state.dataset is before


def test_idx_imagefolder_and_npz_labels(panel, state, qtbot, tmp_path):
    images = RNG.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 7, 1, 0, 1], np.uint8))
    load(panel, qtbot, "idx", tmp_path / "t10k-images-idx3-ubyte.gz")
    assert panel.last_error == "" and state.dataset.shape == (1, 28, 28)
    assert titles(panel) == ["0", "1", "7"]
    root = tmp_path / "tree"
    for cls in ("b", "a"):
        (root / cls).mkdir(parents=True)
        Image.fromarray(images[0]).save(root / cls / "0.png")
    load(panel, qtbot, "imagefolder", root, resolution=8)
    assert state.dataset.shape == (1, 8, 8) and titles(panel) == ["a", "b"]
    np.savez(tmp_path / "set.npz", images=images, labels=np.array([3, 3, 3, 4, 4]))
    load(panel, qtbot, "array", tmp_path / "set.npz")
    assert state.data_options["key"] == "images" and titles(panel) == ["3", "4"]


def test_a_picked_file_chooses_its_source(tmp_path):
    assert source_for_file(tmp_path / "train-images-idx3-ubyte.gz") == "idx"
    assert source_for_file(tmp_path / "data_batch_3.bin") == "cifar"
    assert source_for_file(tmp_path / "x.h5") == "hdf5" and source_for_file(tmp_path / "x.npz") == "array"

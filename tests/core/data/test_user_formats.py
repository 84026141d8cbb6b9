"""The datasets users already have, written here in their exact on-disk formats (a few
records each): MNIST IDX (+ .gz, labels beside), CIFAR-10/100 binary batches, an
ImageFolder tree and an .npz with labels. Bad files are named."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from studio.core.data import load_dataset
from studio.core.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def write_idx(path, array, type_byte=0x08):
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def mnist(tmp_path):
    images = RNG.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    return tmp_path, images, labels


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_idx_images_and_the_labels_beside_them(mnist, gz):
    folder, images, labels = mnist
    write_idx(folder / f"train-images-idx3-ubyte{gz}", images)
    write_idx(folder / f"train-labels-idx1-ubyte{gz}", labels)
    ds = load_dataset("idx", path=str(folder / f"train-images-idx3-ubyte{gz}"))
    assert ds.kind == "images" and ds.shape == (1, 28, 28) and len(ds) == 5
    np.testing.assert_array_equal(ds.to_uint8(ds.data)[..., 0], images)  # pixel for pixel
    assert ds.meta["labels"].tolist() == [3, 1, 4, 1, 5] and ds.meta["levels"] == 256
    # a folder stands for its train images; limit reads only the first items (labels too)
    ds = load_dataset("idx", path=str(folder), limit=2, resolution=16)
    assert ds.data.shape == (2, 1, 16, 16) and ds.meta["labels"].tolist() == [3, 1]


def test_idx_without_labels_and_other_types(tmp_path):
    floats = RNG.normal(size=(6, 2)).astype(np.float32)
    ds = load_dataset("idx", path=str(write_idx(tmp_path / "points.idx", floats, 0x0D)))
    assert ds.kind == "points" and "labels" not in ds.meta
    np.testing.assert_allclose(ds.to_raw(ds.data), floats, atol=1e-5)


def test_idx_wrong_magic_truncation_and_size_are_named(mnist):
    folder, images, labels = mnist
    good = write_idx(folder / "train-images-idx3-ubyte", images).read_bytes()
    bad = folder / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03"[::-1] + good[4:])  # byte-swapped magic
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: wrong magic number 0308"):
        load_dataset("idx", path=str(bad))
    bad.write_bytes(good[:-100])  # a download cut short
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: truncated.*5 items"):
        load_dataset("idx", path=str(bad))
    bad.write_bytes(good + b"\x00" * 7)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: wrong size"):
        load_dataset("idx", path=str(bad))
    write_idx(folder / "train-labels-idx1-ubyte", labels[:4])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*need 5 labels"):
        load_dataset("idx", path=str(folder / "train-images-idx3-ubyte"))


def write_cifar(path, images, labels, coarse=None):
    rows = [bytes([c, f]) if coarse is not None else bytes([f]) for f, c in
            zip(labels, coarse if coarse is not None else labels)]
    path.write_bytes(b"".join(r + im.tobytes() for r, im in zip(rows, images)))
    return path


def test_cifar10_folder_of_batches_with_class_names(tmp_path):
    a = RNG.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    b = RNG.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    write_cifar(tmp_path / "data_batch_1.bin", a, [0, 9, 2])
    write_cifar(tmp_path / "data_batch_2.bin", b, [5, 5])
    write_cifar(tmp_path / "test_batch.bin", b, [1, 1])
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (tmp_path / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    ds = load_dataset("cifar", path=str(tmp_path))
    assert ds.shape == (3, 32, 32) and len(ds) == 5 and ds.meta["variant"] == "cifar10"
    # planes R, G, B of each record, row order: the uint8 view is the same pixels in HWC
    np.testing.assert_array_equal(ds.to_uint8(ds.data), np.moveaxis(np.concatenate([a, b]), 1, -1))
    assert ds.meta["labels"].tolist() == [0, 9, 2, 5, 5] and ds.meta["classes"] == names
    assert len(load_dataset("cifar", path=str(tmp_path), split="all")) == 7
    assert load_dataset("cifar", path=str(tmp_path), split="test").meta["labels"].tolist() == [1, 1]
    assert len(load_dataset("cifar", path=str(tmp_path / "data_batch_2.bin"), limit=1)) == 1
    with pytest.raises(ConfigError, match="split = 'val'"):
        load_dataset("cifar", path=str(tmp_path), split="val")


def test_cifar100_two_label_bytes(tmp_path):
    x = RNG.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    write_cifar(tmp_path / "train.bin", x, labels=[99, 0, 42, 7], coarse=[19, 0, 3, 1])
    ds = load_dataset("cifar", path=str(tmp_path), resolution=16, channels=1)
    assert ds.meta["variant"] == "cifar100" and ds.data.shape == (4, 1, 16, 16)
    assert ds.meta["labels"].tolist() == [99, 0, 42, 7] and ds.meta["coarse_labels"].tolist() == [19, 0, 3, 1]


def test_cifar_truncated_record_wrong_size_and_labels_are_named(tmp_path):
    x = RNG.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    good = write_cifar(tmp_path / "data_batch_1.bin", x, [1, 2]).read_bytes()
    (tmp_path / "data_batch_1.bin").write_bytes(good[:-10])
    with pytest.raises(DataError, match=r"data_batch_1.bin: truncated record: 6136 bytes are 1 whole records"):
        load_dataset("cifar", path=str(tmp_path))
    odd = tmp_path / "mine.bin"
    odd.write_bytes(good[:5000])
    with pytest.raises(DataError, match=r"mine.bin: wrong size 5000 bytes"):
        load_dataset("cifar", path=str(odd))
    (tmp_path / "test_batch.bin").write_bytes(bytes([200]) + good[1:])  # label 200: not CIFAR-10
    with pytest.raises(DataError, match=r"test_batch.bin: record 0 has label byte\(s\) \[200\]"):
        load_dataset("cifar", path=str(tmp_path / "test_batch.bin"))


def test_imagefolder_keeps_each_images_class(tmp_path):
    root = tmp_path / "pets"
    for cls, n in (("dog", 2), ("cat", 1), ("empty", 0)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(RNG.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "loose.png")  # in no class: left out
    with pytest.warns(UserWarning, match="broken.jpg"):
        ds = load_dataset("imagefolder", path=str(root), resolution=8)
    assert ds.meta["classes"] == ["cat", "dog"]  # sorted, empty class folder left out
    assert ds.meta["files"] == ["cat/0.png", "dog/0.png", "dog/1.png"]
    assert ds.meta["labels"].tolist() == [0, 1, 1] and ds.data.shape == (3, 3, 8, 8)
    assert [f for f, _ in ds.meta["skipped"]] == ["dog/broken.jpg"]
    with pytest.raises(DataError, match="no class subfolders"):
        load_dataset("imagefolder", path=str(root / "cat"))


def test_npz_with_labels_beside_the_images(tmp_path):
    images = RNG.integers(0, 256, size=(6, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", images=images, labels=np.arange(6) % 3)
    ds = load_dataset("array", path=str(tmp_path / "set.npz"), limit=4)  # key found: the one non-label array
    assert ds.meta["key"] == "images" and ds.meta["labels"].tolist() == [0, 1, 2, 0]
    np.savez(tmp_path / "named.npz", x=images, y=np.arange(6), extra=images)
    ds = load_dataset("array", path=str(tmp_path / "named.npz"), key="x", labels="y")
    assert ds.meta["labels"].tolist() == list(range(6))
    with pytest.raises(DataError, match=r"named.npz has no labels array 'cls'"):
        load_dataset("array", path=str(tmp_path / "named.npz"), key="x", labels="cls")
    np.savez(tmp_path / "short.npz", images=images, labels=np.arange(5))
    with pytest.raises(DataError, match=r"short.npz \[labels\] must be 6 integer labels"):
        load_dataset("array", path=str(tmp_path / "short.npz"))

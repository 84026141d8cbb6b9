"""CIFAR-10 and CIFAR-100 in their "binary version" (Krizhevsky's page), never the
pickled Python version.

A record is the label byte(s) and 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each
a 32 x 32 image in row order. CIFAR-10 (``data_batch_1.bin`` ... ``data_batch_5.bin``,
``test_batch.bin``) has 1 label byte (0..9); CIFAR-100 (``train.bin``, ``test.bin``) has
2, the coarse (0..19) then the fine label (0..99). Class names come from
``batches.meta.txt`` / ``fine_label_names.txt`` beside the batches when present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .arrays import CancelledFn, ProgressFn, Ticker, check_channels, check_limit, check_resolution, images_dataset
from .arrays import resize_images, set_channels
from .base import Dataset
from .images import _existing

PIXELS = 3 * 32 * 32
LABEL_BYTES = {"cifar10": 1, "cifar100": 2}
CLASSES = {"cifar10": 10, "cifar100": 100}
BATCHES = {  # split -> (CIFAR-10 files, CIFAR-100 files) in a folder
    "train": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["train.bin"]),
    "test": (["test_batch.bin"], ["test.bin"]),
}
CLASS_NAME_FILES = {"cifar10": "batches.meta.txt", "cifar100": "fine_label_names.txt"}
SPLITS = ("train", "test", "all")


def variant_of(file: Path) -> str:
    """``cifar10`` or ``cifar100`` from the file's name, else from its size (a whole
    number of 3073- or 3074-byte records); a size that fits neither is a truncated record."""
    name = file.name
    if name.startswith(("data_batch", "test_batch")):
        return "cifar10"
    if name in ("train.bin", "test.bin"):
        return "cifar100"
    size = file.stat().st_size
    fits = [v for v, k in LABEL_BYTES.items() if size and size % (k + PIXELS) == 0]
    if len(fits) == 1:
        return fits[0]
    raise DataError(f"CIFAR file {file}: wrong size {size} bytes: not a whole number of records of 3073 "
                    "(CIFAR-10) or 3074 (CIFAR-100) bytes")


def read_batch(file: Path, variant: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), fine labels, coarse labels or empty) of one binary
    batch. A size that is not a whole number of records, and labels out of range (the
    wrong variant, or not a CIFAR file), are ``DataError``s naming the file."""
    record = LABEL_BYTES[variant] + PIXELS
    try:
        size = file.stat().st_size
        if size == 0 or size % record:
            raise DataError(f"CIFAR file {file}: truncated record: {size} bytes are {size // record} whole records of "
                            f"{record} bytes ({variant}) and {size % record} bytes over")
        n = size // record if limit is None else min(size // record, limit)
        raw = np.fromfile(file, dtype=np.uint8, count=n * record).reshape(n, record)
    except OSError as e:
        raise DataError(f"cannot read CIFAR file {file}: {type(e).__name__}: {e}") from e
    fine = raw[:, LABEL_BYTES[variant] - 1].astype(np.int64)
    coarse = raw[:, 0].astype(np.int64) if variant == "cifar100" else np.empty(0, np.int64)
    bad = np.flatnonzero(fine >= CLASSES[variant])
    if len(bad) or (variant == "cifar100" and (coarse >= 20).any()):
        i = int(bad[0]) if len(bad) else int(np.flatnonzero(coarse >= 20)[0])
        raise DataError(f"CIFAR file {file}: record {i} has label byte(s) {raw[i, :LABEL_BYTES[variant]].tolist()}, "
                        f"out of range for {variant}; is it a {variant} binary batch?")
    return raw[:, LABEL_BYTES[variant]:].reshape(n, 3, 32, 32), fine, coarse


def batch_files(path: Path, split: str) -> list[Path]:
    """The binary batches a path means: a file is itself; a folder holds CIFAR-10 or
    CIFAR-100 batches of ``split`` (``all``: train then test)."""
    if path.is_file():
        return [path]
    splits = ("train", "test") if split == "all" else (split,)
    for kind in (0, 1):
        found = [path / name for s in splits for name in BATCHES[s][kind] if (path / name).is_file()]
        if found:
            return found
    raise DataError(f"CIFAR folder {path} has no binary batches for split {split!r} "
                    "(data_batch_*.bin / test_batch.bin, or train.bin / test.bin)")


def class_names(folder: Path, variant: str) -> list[str] | None:
    file = folder / CLASS_NAME_FILES[variant]
    if not file.is_file():
        return None
    names = [line.strip() for line in file.read_text(errors="replace").splitlines() if line.strip()]
    return names if len(names) == CLASSES[variant] else None


@DATASETS.register("cifar", kind="images", needs_path=True, description="CIFAR-10 / CIFAR-100 binary batches (.bin)")
def load_cifar(
    path: str | Path | None = None,
    split: str = "train",
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """32 x 32 RGB images from one binary batch file or a folder of them (``split``:
    train, test or all). Labels (CIFAR-100: fine) in ``meta["labels"]``, CIFAR-100's
    coarse ones in ``meta["coarse_labels"]``, class names in ``meta["classes"]``."""
    where = _existing(path, "cifar")
    if split not in SPLITS:
        raise ConfigError(f"data split = {split!r}; allowed: {', '.join(SPLITS)}")
    resolution, channels, limit = check_resolution(resolution), check_channels(channels), check_limit(limit)
    files = batch_files(where, split)
    variant = variant_of(files[0])
    ticker = Ticker(len(files), progress, cancelled)
    images, fine, coarse = [], [], []
    for file in files:
        ticker.check()
        left = None if limit is None else limit - sum(len(i) for i in images)
        if left == 0:
            break
        x, f, c = read_batch(file, variant, left)
        images.append(x)
        fine.append(f)
        coarse.append(c)
        ticker.advance()
    x = torch.from_numpy(np.concatenate(images)).float() / 255.0
    x = set_channels(resize_images(x, resolution), channels)
    meta = {"source": "cifar", "path": str(where), "variant": variant, "files": [f.name for f in files],
            "labels": np.concatenate(fine), "levels": 256}
    if variant == "cifar100":
        meta["coarse_labels"] = np.concatenate(coarse)
    names = class_names(files[0].parent, variant)
    if names:
        meta["classes"] = names
    return images_dataset(x, variant if where.is_dir() else files[0].stem, meta)

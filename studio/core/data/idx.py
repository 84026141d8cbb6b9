"""MNIST and Fashion-MNIST as their authors ship them: IDX files, optionally gzipped.

IDX (LeCun et al.'s MNIST page): a big-endian header ``0x00 0x00 <type> <ndim>``, then
``ndim`` big-endian uint32 dimensions, then the values in C order. MNIST images are
``idx3`` ubyte (N x 28 x 28), labels ``idx1`` ubyte (N). The labels file beside the
images (``train-images-idx3-ubyte`` -> ``train-labels-idx1-ubyte``, same ``.gz``-ness) is
read when present and kept in ``meta["labels"]``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError
from ..registry import DATASETS
from .arrays import CancelledFn, ProgressFn, check_channels, check_limit, check_resolution, dataset_from_array
from .base import Dataset
from .images import _existing

# IDX type byte -> big-endian numpy dtype
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IMAGE_NAMES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path, limit: int | None = None) -> np.ndarray:
    """The array of one IDX file (its first ``limit`` items). A wrong magic number, a
    header shorter than its dimensions and fewer data bytes than they announce (a
    truncated download) are ``DataError``s naming the file."""
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or not 1 <= head[3] <= 8:
                raise DataError(f"IDX file {path}: wrong magic number {head.hex() or '(empty file)'}; an IDX file starts "
                                "00 00 <type 08|09|0b|0c|0d|0e> <ndim>, e.g. 00000803 for MNIST images")
            dtype, ndim = IDX_TYPES[head[2]], head[3]
            dims_bytes = f.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise DataError(f"IDX file {path}: truncated header ({4 + len(dims_bytes)} of {4 + 4 * ndim} bytes)")
            shape = struct.unpack(f">{ndim}I", dims_bytes)
            n = shape[0] if limit is None else min(shape[0], limit)
            item = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            want = n * item
            data = f.read(want)
            if len(data) < want:
                raise DataError(f"IDX file {path}: truncated: the header announces {shape[0]} items of shape "
                                f"{tuple(shape[1:])} ({shape[0] * item} data bytes) but only {len(data)} follow")
            if limit is None and f.read(1):
                raise DataError(f"IDX file {path}: wrong size: more data than the header's shape {tuple(shape)} holds")
    except DataError:
        raise
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path}: {type(e).__name__}: {e}") from e
    return np.frombuffer(data, dtype=dtype).reshape((n, *shape[1:])).astype(dtype.newbyteorder("="))


def labels_beside(images: Path) -> Path | None:
    """``*-images-idx3-ubyte[.gz]`` -> the ``*-labels-idx1-ubyte[.gz]`` next to it, if any."""
    name = images.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if a in name:
            stem = name.replace(a, b)
            for candidate in (stem, stem + ".gz", stem.removesuffix(".gz")):
                if (images.parent / candidate).is_file():
                    return images.parent / candidate
    return None


def _images_file(path: Path) -> Path:
    """A folder stands for its training images file (the first of IMAGE_NAMES, gzipped or not)."""
    if not path.is_dir():
        return path
    for name in IMAGE_NAMES:
        for candidate in (path / name, path / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"IDX folder {path} has no {IMAGE_NAMES[0]} (or .gz); give the images file as 'path'")


@DATASETS.register("idx", kind="images", needs_path=True, description="MNIST / Fashion-MNIST IDX files (.gz too)")
def load_idx(
    path: str | Path | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """Images (``N x H x W`` or ``N x H x W x C``) or points (``N x D``) from an IDX file,
    e.g. ``train-images-idx3-ubyte`` or ``t10k-images-idx3-ubyte.gz``; a folder means its
    ``train-images-idx3-ubyte``. Labels beside it go to ``meta["labels"]`` (their count
    must match)."""
    file = _images_file(_existing(path, "idx"))
    resolution, channels, limit = check_resolution(resolution), check_channels(channels), check_limit(limit)
    array = read_idx(file, limit)
    meta: dict = {"source": "idx", "path": str(file)}
    label_file = labels_beside(file)
    if label_file is not None:
        labels = read_idx(label_file, limit)
        if labels.ndim != 1 or len(labels) != len(array):
            raise DataError(f"IDX labels {label_file} hold shape {labels.shape}; the images {file} need {len(array)} labels")
        meta.update(labels=labels.astype(np.int64), labels_file=str(label_file))
    name = file.name.removesuffix(".gz")
    return dataset_from_array(lambda rows: array[rows], array.shape, array.dtype, name=name, where=str(file), meta=meta,
                              resolution=resolution, channels=channels, progress=progress, cancelled=cancelled)

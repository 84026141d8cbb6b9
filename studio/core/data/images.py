"""Data sources read from disk or shipped with a library: digits, folder, array, hdf5.

Each loader is registered in ``DATASETS`` and returns a :class:`Dataset` built by the
rules of :mod:`studio.core.data.arrays`. All take ``limit`` (max items), ``progress``
(called as ``progress(done, total)``) and ``cancelled`` (polled between pieces; when it
turns true the load raises :class:`LoadCancelled`). A missing or unreadable file is a
``DataError`` naming it; a folder reports each file it could not read by name.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .arrays import (
    CancelledFn,
    ProgressFn,
    Ticker,
    check_channels,
    check_limit,
    check_resolution,
    dataset_from_array,
    images_dataset,
    resize_images,
    set_channels,
)
from .base import Dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _existing(path: Any, what: str) -> Path:
    if path is None or str(path) == "":
        raise DataError(f"the {what} source needs a 'path'")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} file not found: {p}")
    return p


# ==========================================================================================
# scikit-learn's 8x8 digits
# ==========================================================================================


@DATASETS.register("digits", kind="images")
def load_digits_dataset(
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 17 grey levels 0..16).

    Shipped inside scikit-learn (no download). ``resolution`` upsamples them with an
    antialiased resize (e.g. 16 or 32); ``channels = 3`` repeats the grey level.
    """
    from sklearn.datasets import load_digits

    resolution, channels, limit = check_resolution(resolution), check_channels(channels), check_limit(limit)
    ticker = Ticker(1, progress, cancelled)
    ticker.check()
    bunch = load_digits()
    images, labels = bunch.images[:limit], bunch.target[:limit]
    x = torch.as_tensor(images / 16.0, dtype=torch.float32)[:, None]
    x = set_channels(resize_images(x, resolution), channels)
    ticker.advance()
    meta = {"source": "digits", "labels": labels.copy(), "levels": 17}
    return images_dataset(x, "digits", meta)


# ==========================================================================================
# A folder of PNG / JPEG files
# ==========================================================================================


HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # Pillow's modes of 16-bit grey PNGs


def _square(im: Any, resolution: int) -> Any:
    """Center crop to a square, then a Lanczos resize to ``resolution`` (any PIL mode)."""
    from PIL import Image

    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != resolution:
        im = im.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=None)
    return im


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EXIF orientation -> the transpose that turns the picture upright (as ImageOps.exif_transpose)
EXIF_TURNS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}


def png_bit_depth(path: Path) -> int:
    """The bit depth of a PNG's samples, from its IHDR chunk (PNG spec 11.2.2); 0 for
    another file. Pillow opens 16-bit colour PNGs as 8-bit RGB(A) and does not say so."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return 0
    return head[24]


def _read_png16_colour(path: Path, orientation: int, resolution: int) -> tuple[torch.Tensor, bool]:
    """A 16-bit colour or grey+alpha PNG at full depth, read by pypng (Pillow keeps only
    the high byte of each sample): [0, 1] floats, alpha over white, turned upright by its
    EXIF ``orientation``, squared per channel in float."""
    import png
    from PIL import Image

    try:
        width, height, rows, info = png.Reader(filename=str(path)).read()  # stored samples (sBIT is a hint)
        x = np.vstack([np.asarray(r, dtype=np.float64) for r in rows])
    except png.Error as e:
        raise OSError(f"16-bit PNG: {e}") from None
    x = x.reshape(height, width, info["planes"]) / 65535.0
    if info["alpha"]:  # transparent pixels over white, as a viewer shows them
        x = x[..., :-1] * x[..., -1:] + (1.0 - x[..., -1:])
    channels = []
    for c in range(x.shape[-1]):
        plane = Image.fromarray(x[..., c].astype(np.float32), mode="F")
        if orientation in EXIF_TURNS:
            plane = plane.transpose(getattr(Image.Transpose, EXIF_TURNS[orientation]))
        channels.append(np.asarray(_square(plane, resolution), dtype=np.float32))
    grey = len(channels) == 1
    out = torch.from_numpy(np.clip(np.stack(channels), 0.0, 1.0))
    return (out.expand(3, -1, -1).contiguous() if grey else out), grey


def _read_image(path: Path, resolution: int) -> tuple[torch.Tensor, bool, int]:
    """One file -> (3, R, R) float in [0, 1], whether it was grey, and its number of
    levels (256, or 65536 for a 16-bit PNG); PIL errors propagate."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if im.format == "PNG" and im.mode in ("RGB", "RGBA", "LA") and png_bit_depth(path) == 16:
            x, grey = _read_png16_colour(path, im.getexif().get(0x0112, 1), resolution)
            return x, grey, 65536
        im.load()
        im = ImageOps.exif_transpose(im)  # phone JPEGs store their rotation in EXIF
        if im.mode in HIGH_DEPTH_MODES:
            # PIL's convert("L"/"RGB") clips 16-bit values at 255 instead of scaling them
            # (a 16-bit scan of noise became 99% white): scale to [0, 1] as floats ("F")
            unit = np.clip(np.asarray(im, dtype=np.float64) / 65535.0, 0.0, 1.0).astype(np.float32)
            grey = np.asarray(_square(Image.fromarray(unit, mode="F"), resolution), dtype=np.float32)
            x = torch.from_numpy(np.clip(grey, 0.0, 1.0).copy())[None].expand(3, -1, -1).contiguous()
            return x, True, 65536
        grey = im.mode in ("1", "L", "LA", "F")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            # transparent pixels over white, as a viewer shows them
            rgba = im.convert("RGBA")
            im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im.alpha_composite(rgba)
        pixels = np.asarray(_square(im.convert("RGB"), resolution), dtype=np.uint8)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0, grey, 256


def image_files(folder: Path) -> list[Path]:
    """PNG / JPEG files under ``folder`` (subfolders too), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@DATASETS.register("folder", kind="images", needs_path=True)
def load_folder(
    path: str | Path | None = None,
    resolution: int = 32,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """PNG / JPEG images in a folder, center-cropped to a square and resized.

    ``channels`` None picks 1 when every image is greyscale, else 3. Files that cannot
    be read are skipped and reported by name in ``meta["skipped"]`` as
    ``(file, reason)`` and as warnings; if none loads, a ``DataError`` names the folder.
    """
    folder = _existing(path, "folder")
    if not folder.is_dir():
        raise DataError(f"folder source path is not a folder: {folder}")
    resolution = check_resolution(resolution) or 32
    channels, limit = check_channels(channels), check_limit(limit)
    files = image_files(folder)
    if not files:
        raise DataError(f"no PNG or JPEG files in folder {folder}")
    x, names, skipped, levels = read_images(folder, files, resolution, channels, limit, progress, cancelled)
    meta = {"source": "folder", "path": str(folder), "files": names, "skipped": skipped, "levels": levels}
    return images_dataset(x, folder.name or "folder", meta)


def read_images(folder: Path, files: list[Path], resolution: int, channels: int | None, limit: int | None,
                progress: ProgressFn | None, cancelled: CancelledFn | None) -> tuple[torch.Tensor, list[str], list, int]:
    """The first ``limit`` readable ``files`` as (N, C, R, R) in [0, 1], their names
    relative to ``folder``, ``(name, reason)`` of each file skipped (also a warning), and
    the number of levels (65536 when any image is 16-bit: 8-bit values k/255 lie on that
    grid too, k/255 = 257k/65535). ``channels`` None is 1 when every image read is grey, else 3."""
    from PIL import Image

    ticker = Ticker(len(files) if limit is None else min(len(files), limit), progress, cancelled)
    images, names, skipped, all_grey, levels = [], [], [], True, 256
    for f in files:
        if limit is not None and len(images) >= limit:
            break
        ticker.check()
        try:
            pixels, grey, depth = _read_image(f, resolution)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            reason = f"{type(e).__name__}: {e}"
            skipped.append((str(f.relative_to(folder)), reason))
            warnings.warn(f"skipped image {f}: {reason}", stacklevel=3)
        else:
            images.append(pixels)
            names.append(str(f.relative_to(folder)))
            all_grey &= grey
            levels = max(levels, depth)
        ticker.advance()  # files looked at, read or skipped
    if not images:
        raise DataError(
            f"none of the {len(files)} image files in folder {folder} could be read "
            f"(first failure: {skipped[0][0]}: {skipped[0][1]})"
        )
    x = set_channels(torch.stack(images), channels if channels is not None else (1 if all_grey else 3))
    return x, names, skipped, levels


# ==========================================================================================
# NumPy .npy / .npz
# ==========================================================================================


@DATASETS.register("array", kind="file", needs_path=True)
def load_array(
    path: str | Path | None = None,
    key: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
    labels: str | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """Points or images from a ``.npy`` file or one array (``key``) of an ``.npz`` file.

    Shapes: N x D points; N x H x W, N x H x W x C, N x C x H x W images (C = 1 | 3),
    uint8, uint16 (0..65535) or float in [0, 1], [-1, 1] or [0, 255] (detected). An ``.npz`` array named
    ``labels`` (or the one ``labels`` names) beside the data, one integer per item, goes
    to ``meta["labels"]``; with only data and labels in the file, ``key`` may be left out.
    """
    file = _existing(path, "array")
    resolution, channels, limit = check_resolution(resolution), check_channels(channels), check_limit(limit)
    suffix = file.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise DataError(f"array file {file} must end in .npy or .npz")
    where = str(file)
    try:
        if suffix == ".npy":
            if labels is not None:
                raise ConfigError(f"data labels = {labels!r}: labels are an array of an .npz file; {file} is .npy")
            # a memory map reads only the rows asked for (limit, progress by chunk)
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(file, allow_pickle=False) as npz:
                keys = list(npz.files)
                label_key = labels or "labels"
                if labels is not None and labels not in keys:
                    raise DataError(f"array file {file} has no labels array {labels!r}; available: {', '.join(keys)}")
                data_keys = [k for k in keys if k != label_key]
                if key is None and len(data_keys) == 1:
                    key = data_keys[0]
                if key is None:
                    raise DataError(f"array file {file} holds several arrays; set 'key' to one of: {', '.join(keys)}")
                if key not in keys:
                    raise DataError(
                        f"array file {file} has no array {key!r}; available: {', '.join(keys) or '(none)'}"
                    )
                array = npz[key]
                label_array = npz[label_key] if label_key in keys and label_key != key else None
            where = f"{file} [{key}]"
    except (DataError, ConfigError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read array file {file}: {type(e).__name__}: {e}") from e
    meta = {"source": "array", "path": str(file), "key": key}
    if suffix == ".npz" and label_array is not None:
        meta["labels"] = item_labels(label_array, len(array), f"{file} [{label_key}]")[:limit]
        meta["labels_key"] = label_key
    name = file.stem if key is None or suffix == ".npy" else f"{file.stem}:{key}"
    return dataset_from_array(
        lambda rows: array[rows], array.shape, array.dtype, name=name, where=where, meta=meta,
        limit=limit, resolution=resolution, channels=channels, progress=progress, cancelled=cancelled,
    )


def item_labels(array: np.ndarray, count: int, where: str) -> np.ndarray:
    """One integer class per item, as int64; another shape or dtype is a DataError."""
    if array.ndim != 1 or len(array) != count or array.dtype.kind not in "iub":
        raise DataError(f"{where} must be {count} integer labels (one per item); it has shape {array.shape}, "
                        f"dtype {array.dtype}")
    return array.astype(np.int64)


# ==========================================================================================
# HDF5
# ==========================================================================================


def list_hdf5_datasets(path: str | Path) -> list[tuple[str, tuple[int, ...], str]]:
    """Every dataset in an HDF5 file as ``(path inside the file, shape, dtype)``, for pickers."""
    import h5py

    file = _existing(path, "hdf5")
    found: list[tuple[str, tuple[int, ...], str]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append((name, tuple(int(s) for s in obj.shape), str(obj.dtype)))

    try:
        with h5py.File(file, "r") as f:
            f.visititems(visit)
    except OSError as e:
        raise DataError(f"cannot read HDF5 file {file}: {e}") from e
    return found


@DATASETS.register("hdf5", kind="file", needs_path=True)
def load_hdf5(
    path: str | Path | None = None,
    key: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """Points or images from one dataset (``key``, e.g. ``"train/images"``) of an HDF5
    file; same shape and range rules as ``array``. Read in chunks: only ``limit`` rows
    are read, with progress and cancel between chunks."""
    import h5py

    file = _existing(path, "hdf5")
    resolution, channels, limit = check_resolution(resolution), check_channels(channels), check_limit(limit)
    available = list_hdf5_datasets(file)
    names = [name for name, _, _ in available]
    listing = ", ".join(f"{n} {s} {d}" for n, s, d in available) or "(none)"
    if key is None and len(names) == 1:
        key = names[0]
    if key is None:
        raise DataError(f"HDF5 file {file} holds several datasets; set 'key' to one of: {listing}")
    key = str(key).strip("/")
    if key not in names:
        raise DataError(f"HDF5 file {file} has no dataset {key!r}; datasets present: {listing}")
    meta = {"source": "hdf5", "path": str(file), "key": key}
    with h5py.File(file, "r") as f:
        ds = f[key]
        return dataset_from_array(
            lambda rows: ds[rows], ds.shape, ds.dtype, name=f"{file.stem}:{key}", where=f"{file} [{key}]",
            meta=meta, limit=limit, resolution=resolution, channels=channels, progress=progress,
            cancelled=cancelled, chunk=256,
        )

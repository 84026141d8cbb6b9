"""From a raw array to a :class:`Dataset`: shape detection, pixel range, resizing.

Every file source (array, HDF5, folder, digits) ends here, so the rules live once:

* ``N x D`` is a set of points, standardised per dimension (mean/std kept as
  ``shift``/``scale`` so ``to_raw`` gives the original coordinates back);
* ``N x H x W``, ``N x H x W x C`` and ``N x C x H x W`` (``C`` in 1 | 3) are images,
  mapped to float32 ``(N, C, H, W)`` in [-1, 1] with ``shift = scale = 0.5`` so that
  ``to_raw`` gives pixels in [0, 1];
* pixel values are ``uint8``, ``uint16`` (0..65535) or floats in [0, 1], [-1, 1] or [0, 255] (detected).

Long loads report ``progress(done, total)`` and poll ``cancelled()`` between pieces so
the app can run them off its GUI thread; a cancelled load raises :class:`LoadCancelled`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from .base import Dataset

ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]

ALLOWED_SHAPES = "N x D (points), N x H x W, N x H x W x C or N x C x H x W (images, C = 1 | 3)"
PIXEL_LEVELS = {"uint8": 256, "uint16": 65536}  # integer pixels: the grid bits/dim is counted on
_EPS = 1e-3  # tolerance when deciding which pixel range a float array uses


class LoadCancelled(Exception):
    """The caller's ``cancelled()`` turned true while a dataset was loading."""


class Ticker:
    """Reports progress and honours cancel between the pieces of a load."""

    def __init__(self, total: int, progress: ProgressFn | None = None, cancelled: CancelledFn | None = None):
        self.total = int(total)
        self.done = 0
        self._progress = progress
        self._cancelled = cancelled

    def check(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise LoadCancelled(f"loading cancelled after {self.done} of {self.total}")

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        if self._progress is not None:
            self._progress(self.done, self.total)


# --- option checks ---------------------------------------------------------------------


def check_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ConfigError(f"data limit = {limit!r} must be an integer >= 1 (or left out for everything)")
    return int(limit)


def check_resolution(resolution: Any) -> int | None:
    if resolution is None:
        return None
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 2 <= resolution <= 512:
        raise ConfigError(f"data resolution = {resolution!r} must be an integer in 2..512")
    return int(resolution)


def check_channels(channels: Any) -> int | None:
    if channels is None:
        return None
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"data channels = {channels!r}; allowed: 1, 3")
    return int(channels)


# --- shapes and ranges ---------------------------------------------------------------------


def image_layout(shape: tuple[int, ...], where: str) -> str | None:
    """``None`` for points, else ``"NHW"``, ``"NHWC"`` or ``"NCHW"``; other shapes are errors."""
    if len(shape) >= 1 and shape[0] == 0:
        raise DataError(f"{where} holds no items (shape {shape})")
    if len(shape) == 2:
        return None
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        # NCHW is torch's own layout, so it wins the rare tie (e.g. N x 3 x 8 x 3)
        if shape[1] in (1, 3):
            return "NCHW"
        if shape[3] in (1, 3):
            return "NHWC"
    raise DataError(f"{where} has shape {shape}; allowed: {ALLOWED_SHAPES}")


def to_nchw(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return array[:, None]
    if layout == "NHWC":
        return np.moveaxis(array, -1, 1)
    return array


def check_numeric(array: np.ndarray, where: str) -> None:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {array.dtype}; allowed: integer or float numbers")


def pixels_to_unit(array: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """Pixel values -> float32 in [0, 1]; returns the array and the range it was found in."""
    check_numeric(array, where)
    if array.dtype == np.uint8 or array.dtype == np.bool_:
        scale = 255.0 if array.dtype == np.uint8 else 1.0
        return array.astype(np.float32) / scale, "uint8" if scale == 255.0 else "[0, 1]"
    if array.dtype == np.uint16:  # 16-bit scans: the full 0..65535 range, not [0, 255]
        return (array.astype(np.float64) / 65535.0).astype(np.float32), "uint16"
    x = array.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{where} contains NaN or infinite pixel values")
    lo, hi = float(x.min()), float(x.max())
    if lo >= -_EPS and hi <= 1.0 + _EPS:
        return np.clip(x, 0.0, 1.0), "[0, 1]"
    if lo >= -1.0 - _EPS and hi <= 1.0 + _EPS:
        return np.clip((x + 1.0) * 0.5, 0.0, 1.0), "[-1, 1]"
    if lo >= -_EPS and hi <= 255.0 + _EPS:
        return np.clip(x / 255.0, 0.0, 1.0), "[0, 255]"
    raise DataError(
        f"{where} has pixel values in [{lo:g}, {hi:g}]; allowed ranges: [0, 1], [-1, 1], [0, 255] (or uint8, uint16)"
    )


# --- image operations on (N, C, H, W) float tensors in [0, 1] ------------------------------


def center_crop_square(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return x[..., top : top + s, left : left + s]


def resize_images(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Center crop to a square, then an antialiased resize to ``resolution`` x ``resolution``."""
    if resolution is None:
        return x
    x = center_crop_square(x)
    if x.shape[-1] == resolution:
        return x
    # antialias matters when shrinking (no aliasing); bilinear never overshoots [0, 1]
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False).clamp_(0.0, 1.0)


def set_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """1 -> 3 repeats the grey level; 3 -> 1 takes the luma (ITU-R BT.601 weights, as PIL)."""
    if channels is None or x.shape[1] == channels:
        return x
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


# --- datasets -------------------------------------------------------------------------------


def images_dataset(unit: np.ndarray | torch.Tensor, name: str, meta: dict[str, Any]) -> Dataset:
    """Pixels in [0, 1] as (N, C, H, W) -> a Dataset in [-1, 1] (raw = 0.5 data + 0.5)."""
    x = torch.as_tensor(unit, dtype=torch.float32)
    data = (x * 2.0 - 1.0).contiguous()
    return Dataset(name, data, "images", torch.tensor(0.5), torch.tensor(0.5), meta)


def points_dataset(points: np.ndarray, name: str, meta: dict[str, Any], where: str) -> Dataset:
    """N x D points, standardised per dimension (a constant dimension keeps scale 1)."""
    check_numeric(points, where)
    p = points.astype(np.float64)
    if not np.isfinite(p).all():
        raise DataError(f"{where} contains NaN or infinite values")
    mean = p.mean(0)
    std = p.std(0)
    std = np.where(std > 0, std, 1.0)
    data = torch.as_tensor((p - mean) / std, dtype=torch.float32)
    return Dataset(name, data, "points", torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32), meta)


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def dataset_from_array(
    read: Callable[[slice], np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    name: str,
    where: str,
    meta: dict[str, Any],
    limit: int | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    chunk: int = 1024,
) -> Dataset:
    """Read ``read(rows)`` piece by piece (an array in memory, a memory map, an HDF5
    dataset) and turn it into a Dataset by the rules in this module's docstring."""
    shape = tuple(int(s) for s in shape)
    layout = image_layout(shape, where)
    check_numeric(np.empty(0, dtype=dtype), where)
    n = shape[0] if limit is None else min(shape[0], limit)
    ticker = Ticker(n, progress, cancelled)
    pieces = []
    for rows in chunks(n, chunk):
        ticker.check()
        pieces.append(np.asarray(read(rows)))
        ticker.advance(rows.stop - rows.start)
    array = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    meta = {**meta, "file_shape": shape, "file_dtype": str(np.dtype(dtype))}
    if layout is None:
        if resolution is not None or channels is not None:
            raise ConfigError(f"{where} holds points (shape {shape}); resolution and channels apply to images only")
        return points_dataset(array, name, meta, where)
    unit, found = pixels_to_unit(to_nchw(array, layout), where)
    x = torch.from_numpy(np.ascontiguousarray(unit))
    x = set_channels(resize_images(x, resolution), channels)
    meta.update(layout=layout, pixel_range=found)
    if found in PIXEL_LEVELS:
        meta["levels"] = PIXEL_LEVELS[found]
    return images_dataset(x, name, meta)

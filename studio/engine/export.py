"""Exports with numpy, pillow and h5py: samples NPZ, sample grid PNG, denoising strip,
reverse-process GIF and 2-D scatter PNG. Every file is written under a temporary name
and renamed (engine.atomic). Registered in ``EXPORTERS`` with the suffix each writes.

Images come as uint8 ``(N, H, W, C)`` or as floats ``(N, C, H, W)`` in the data's raw
scale [0, 1]; points as ``(N, 2)`` floats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import DataError
from ..core.registry import EXPORTERS
from .atomic import atomic_path


def as_uint8_nhwc(images: Any) -> np.ndarray:
    """uint8 (N, H, W, C) from uint8 NHWC or float NCHW / NHW in [0, 1]."""
    a = np.asarray(images)
    if a.dtype == np.uint8:
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise DataError(f"images must be (N, H, W, C) uint8, got shape {a.shape}")
        return a
    a = a.astype(np.float32)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise DataError(f"images must be (N, C, H, W) floats in [0, 1], got shape {a.shape}")
    return (np.clip(np.moveaxis(a, 1, -1), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(images: Any, rows: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """One uint8 (H, W, C) mosaic of the images, row by row (``rows`` default: square)."""
    a = as_uint8_nhwc(images)
    n, h, w, c = a.shape
    rows = max(1, int(rows) if rows else int(math.ceil(math.sqrt(n))))
    cols = max(1, int(math.ceil(n / rows)))
    p = max(0, int(padding))
    out = np.full((rows * h + (rows + 1) * p, cols * w + (cols + 1) * p, c), pad_value, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        y, x = p + r * (h + p), p + q * (w + p)
        out[y : y + h, x : x + w] = a[k]
    return out


def _pil(mosaic: np.ndarray, scale: int = 1):
    from PIL import Image

    img = Image.fromarray(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic)
    scale = max(1, int(scale))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def _png_info(metadata: dict[str, Any] | None):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(str(key), value if isinstance(value, str) else json.dumps(value))
    return info


def _save_png(img, path: str | Path, metadata: dict[str, Any] | None) -> Path:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", pnginfo=_png_info(metadata))
    return Path(path)


def save_samples_npz(samples: Any, path: str | Path, **extra: Any) -> Path:
    """``samples`` (N x ...) in the data's own shape and scale, plus any extra arrays."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, samples=np.asarray(samples), **{k: np.asarray(v) for k, v in extra.items()})
    return Path(path)


def save_grid_png(
    images: Any,
    path: str | Path,
    rows: int | None = None,
    padding: int = 2,
    scale: int = 1,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """A grid of samples; ``metadata`` (e.g. config and seed) goes in PNG text chunks."""
    return _save_png(_pil(make_grid(images, rows, padding), scale), path, metadata)


def strip_mosaic(frames: Any, padding: int = 2) -> np.ndarray:
    """(K steps, M samples, ...) images -> one mosaic: a row per sample, a column per step."""
    frames = [as_uint8_nhwc(f) for f in frames]
    k, m = len(frames), len(frames[0])
    by_sample = [frames[j][i] for i in range(m) for j in range(k)]
    return make_grid(np.stack(by_sample), rows=m, padding=padding)


def save_strip_png(
    frames: Any, path: str | Path, padding: int = 2, scale: int = 1, metadata: dict[str, Any] | None = None
) -> Path:
    """Denoising strip: ``frames[j]`` are the chosen samples at the j-th chosen step."""
    return _save_png(_pil(strip_mosaic(frames, padding), scale), path, metadata)


def save_gif(frames: Sequence[np.ndarray], path: str | Path, duration_ms: int = 40, scale: int = 1, hold_last_ms: int = 1000) -> Path:
    """Animated GIF from uint8 (H, W, C) mosaics (e.g. ``make_grid`` of x_t per step)."""
    if len(frames) == 0:
        raise DataError(f"no frames to write to {path}")
    images = [_pil(np.asarray(f) if np.asarray(f).ndim == 3 else np.asarray(f)[..., None], scale) for f in frames]
    durations = [int(duration_ms)] * len(images)
    durations[-1] = max(int(duration_ms), int(hold_last_ms))
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Path(path)


def scatter_image(
    points: Any,
    size: int = 512,
    bounds: tuple[float, float, float, float] | None = None,
    color: tuple[int, int, int] = (31, 119, 180),
    radius: float = 1.5,
) -> np.ndarray:
    """2-D points drawn with pillow on a white square; uint8 (size, size, 3).
    ``bounds`` = (xmin, xmax, ymin, ymax), default the points' range plus a margin."""
    from PIL import Image, ImageDraw

    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise DataError(f"a scatter plot needs points (N, 2), got shape {p.shape}")
    p = p[np.isfinite(p).all(1)]
    if bounds is None:
        lo, hi = (p.min(0), p.max(0)) if len(p) else (np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
        half = max(float((hi - lo).max()) / 2 * 1.1, 1e-6)
        mid = (lo + hi) / 2
        bounds = (mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half)
    x0, x1, y0, y1 = bounds
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(160, 160, 160))
    u = (p[:, 0] - x0) / max(x1 - x0, 1e-12) * (size - 1)
    v = (1.0 - (p[:, 1] - y0) / max(y1 - y0, 1e-12)) * (size - 1)  # y up
    for a, b in zip(u, v):
        draw.ellipse([a - radius, b - radius, a + radius, b + radius], fill=color)
    return np.asarray(img)


def save_scatter_png(points: Any, path: str | Path, size: int = 512, bounds=None, metadata: dict[str, Any] | None = None) -> Path:
    return _save_png(_pil(scatter_image(points, size, bounds)), path, metadata)


EXPORTERS.register("samples_npz", save_samples_npz, description="Samples as NumPy .npz (key 'samples')", suffix=".npz")
EXPORTERS.register("grid_png", save_grid_png, description="Sample grid PNG", suffix=".png", kind="images")
EXPORTERS.register("strip_png", save_strip_png, description="Denoising strip PNG", suffix=".png", kind="images")
EXPORTERS.register("gif", save_gif, description="Animated GIF of the reverse process", suffix=".gif")
EXPORTERS.register("scatter_png", save_scatter_png, description="2-D scatter PNG", suffix=".png", kind="points")

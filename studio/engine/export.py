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


# -- 2-D points as a plot: axes, the held-out data in grey under the samples ------------

SAMPLE_COLOR, REFERENCE_COLOR = (31, 119, 180), (175, 175, 175)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    span = max(hi - lo, 1e-12)
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def plot_bounds(*clouds: Any, margin: float = 0.06, percentile: float = 0.5) -> tuple[float, float, float, float]:
    """A square view (equal units on both axes) holding the ``percentile`` .. 100 -
    ``percentile`` % range of the clouds' first two coordinates, so a few far-off samples
    do not shrink the distribution to a dot."""
    p = [np.asarray(c, dtype=np.float64) for c in clouds if c is not None and len(c)]
    p = np.concatenate([c.reshape(len(c), -1)[:, :2] for c in p]) if p else np.empty((0, 2))
    p = p[np.isfinite(p).all(1)]
    if not len(p):
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = np.percentile(p, percentile, axis=0), np.percentile(p, 100 - percentile, axis=0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * (1 + 2 * margin), 1e-6)
    return (mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half)


def points_plot(samples: Any, reference: Any = None, size: int = 1200, bounds=None, title: str = "",
                labels: tuple[str, str] = ("x[0]", "x[1]")) -> np.ndarray:
    """A scatter plot of 2-D ``samples`` over ``reference`` points (the held-out data) in
    grey, with ticked axes, a legend with the counts (and how many samples fall outside
    the view) and an optional title; uint8 (size, size, 3). Dots and text scale with
    ``size`` so the figure reads at any resolution."""
    from PIL import Image, ImageDraw, ImageFont

    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2:
        raise DataError(f"a points plot needs samples (N, 2), got shape {s.shape}")
    ref = None if reference is None else np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    x0, x1, y0, y1 = bounds or plot_bounds(s, ref)
    k = size / 1000.0  # everything is laid out for 1000 px and scaled
    font = ImageFont.load_default(size=max(10, int(22 * k)))
    small = ImageFont.load_default(size=max(9, int(18 * k)))
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = int(140 * k), int(70 * k), size - int(30 * k), size - int(90 * k)
    side = min(right - left, bottom - top)  # a square plot area: equal units on both axes
    right, bottom = left + side, top + side

    def px(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (left + (p[:, 0] - x0) / (x1 - x0) * side, bottom - (p[:, 1] - y0) / (y1 - y0) * side)

    def dots(p: np.ndarray, color: tuple[int, int, int], r: float) -> int:
        p = p[np.isfinite(p).all(1)]
        u, v = px(p)
        inside = (u >= left) & (u <= right) & (v >= top) & (v <= bottom)
        for a, b in zip(u[inside], v[inside]):
            draw.ellipse([a - r, b - r, a + r, b + r], fill=color)
        return int((~inside).sum())

    for t in nice_ticks(x0, x1):  # grid lines and tick labels
        u = left + (t - x0) / (x1 - x0) * side
        draw.line([u, top, u, bottom], fill=(236, 236, 236), width=max(1, int(k)))
        draw.line([u, bottom, u, bottom + 8 * k], fill="black", width=max(1, int(2 * k)))
        draw.text((u, bottom + 12 * k), f"{t:g}", fill="black", font=small, anchor="mt")
    for t in nice_ticks(y0, y1):
        v = bottom - (t - y0) / (y1 - y0) * side
        draw.line([left, v, right, v], fill=(236, 236, 236), width=max(1, int(k)))
        draw.line([left - 8 * k, v, left, v], fill="black", width=max(1, int(2 * k)))
        draw.text((left - 12 * k, v), f"{t:g}", fill="black", font=small, anchor="rm")
    if ref is not None and len(ref):
        dots(ref, REFERENCE_COLOR, 2.6 * k)
    outside = dots(s, SAMPLE_COLOR, 3.0 * k)
    draw.rectangle([left, top, right, bottom], outline="black", width=max(1, int(2 * k)))
    draw.text(((left + right) / 2, bottom + 50 * k), labels[0], fill="black", font=font, anchor="mt")
    draw.text((24 * k, (top + bottom) / 2), labels[1], fill="black", font=font, anchor="lm")
    if title:
        draw.text(((left + right) / 2, top - 22 * k), title, fill="black", font=font, anchor="mb")
    legend = [(SAMPLE_COLOR, f"samples ({len(s):,}" + (f", {outside:,} outside the view)" if outside else ")"))]
    if ref is not None and len(ref):
        legend.append((REFERENCE_COLOR, f"held-out data ({len(ref):,})"))
    for row, (color, text) in enumerate(legend):
        y = top + (22 + 30 * row) * k
        draw.ellipse([left + 16 * k, y - 7 * k, left + 30 * k, y + 7 * k], fill=color)
        draw.text((left + 40 * k, y), text, fill="black", font=small, anchor="lm")
    return np.asarray(img)


def save_points_png(samples: Any, path: str | Path, reference: Any = None, size: int = 1200, bounds=None,
                    title: str = "", metadata: dict[str, Any] | None = None) -> Path:
    """:func:`points_plot` as a PNG (with ``metadata`` as text chunks)."""
    return _save_png(_pil(points_plot(samples, reference, size, bounds, title)), path, metadata)


EXPORTERS.register("samples_npz", save_samples_npz, description="Samples as NumPy .npz (key 'samples')", suffix=".npz")
EXPORTERS.register("grid_png", save_grid_png, description="Sample grid PNG", suffix=".png", kind="images")
EXPORTERS.register("strip_png", save_strip_png, description="Denoising strip PNG", suffix=".png", kind="images")
EXPORTERS.register("gif", save_gif, description="Animated GIF of the reverse process", suffix=".gif")
EXPORTERS.register("scatter_png", save_scatter_png, description="2-D scatter PNG", suffix=".png", kind="points")
EXPORTERS.register("points_png", save_points_png, description="2-D samples plot over the held-out data (axes, legend)",
                   suffix=".png", kind="points")

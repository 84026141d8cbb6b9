"""Example plugin: a procedurally drawn image set at CIFAR's size, ``[data] source = "shapes"``.

Each 32x32 RGB image (``resolution`` sets the side) is a plain background of a random
dark colour with one to three shapes on it, each a disc, a square or a triangle of a
random bright colour, size, place and (squares, triangles) rotation, drawn in order so
later shapes cover earlier ones. Edges are antialiased by 4x4 supersampling and the
pixels stored on the 8-bit grid (so bits/dim on the 8-bit scale means what it does for
photographs). Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed
gives the same images on any machine. ``meta["labels"]`` holds the first shape's kind
(0 disc, 1 square, 2 triangle) of each image.
"""

from __future__ import annotations

import math

import numpy as np

from studio.core.data.arrays import CancelledFn, ProgressFn, Ticker, images_dataset
from studio.core.data.base import Dataset
from studio.core.errors import ConfigError
from studio.core.registry import DATASETS

KINDS = ("disc", "square", "triangle")
MAX_SHAPES = 3
SUPERSAMPLE = 4
CHUNK = 256  # images drawn at once: (CHUNK, 4R, 4R) float32 masks, ~16 MB at R = 32


def _inside(kind: int, cx, cy, r, angle, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(B, S, S) masks of one kind of shape, one per image, at sub-pixel centres (u, v) in [0, 1]."""
    dx, dy = u[None] - cx[:, None, None], v[None] - cy[:, None, None]
    r = r[:, None, None]
    if kind == 0:
        return dx * dx + dy * dy <= r * r
    angle = angle[:, None, None]
    if kind == 1:  # the square of half-side r / sqrt(2) (the disc's inscribed square), rotated
        cos, sin = np.cos(angle), np.sin(angle)
        half = r / np.float32(math.sqrt(2))
        return (np.abs(cos * dx + sin * dy) <= half) & (np.abs(cos * dy - sin * dx) <= half)
    # equilateral triangle of circumradius r: inside all three edges, whose outward
    # normals point away from the vertices at angle + 2 pi k / 3, at distance r / 2
    inside = np.ones(dx.shape, bool)
    for k in range(3):
        phi = angle + np.float32(math.pi + 2 * math.pi * k / 3)
        inside &= dx * np.cos(phi) + dy * np.sin(phi) <= r / 2
    return inside


def _coverage(kind, cx, cy, r, angle, u, v, resolution: int) -> np.ndarray:
    """(B, R, R) fraction of each pixel the shape covers: the mean of its 4x4 sub-pixel samples."""
    cover = np.zeros((len(kind), resolution, resolution), np.float32)
    for k in range(len(KINDS)):
        idx = np.flatnonzero(kind == k)
        if len(idx):
            mask = _inside(k, cx[idx], cy[idx], r[idx], angle[idx], u, v)
            cover[idx] = mask.reshape(-1, resolution, SUPERSAMPLE, resolution, SUPERSAMPLE).mean((2, 4))
    return cover


def draw_shapes(n: int, resolution: int = 32, seed: int = 0, ticker: Ticker | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, R, R) float pixels in [0, 1] on the 8-bit grid, and the first shape's kind."""
    rng = np.random.default_rng(seed)
    # every random number is drawn up front, so chunking never changes the images
    f32 = np.float32
    background = rng.uniform(0.0, 0.35, (n, 3)).astype(f32)
    count = rng.integers(1, MAX_SHAPES + 1, n)
    kind = rng.integers(0, len(KINDS), (n, MAX_SHAPES))
    colour = rng.uniform(0.35, 1.0, (n, MAX_SHAPES, 3)).astype(f32)
    radius = rng.uniform(0.12, 0.3, (n, MAX_SHAPES)).astype(f32)
    centre = rng.uniform(0.15, 0.85, (n, MAX_SHAPES, 2)).astype(f32)
    angle = rng.uniform(0.0, 2 * math.pi, (n, MAX_SHAPES)).astype(f32)
    side = resolution * SUPERSAMPLE
    grid = ((np.arange(side) + 0.5) / side).astype(f32)
    u, v = np.meshgrid(grid, grid)  # u: x (columns), v: y (rows)
    out = np.empty((n, 3, resolution, resolution), np.float32)
    for start in range(0, n, CHUNK):
        if ticker is not None:
            ticker.check()
        sl = slice(start, min(n, start + CHUNK))
        img = np.broadcast_to(background[sl, :, None, None], (sl.stop - sl.start, 3, resolution, resolution)).copy()
        for k in range(MAX_SHAPES):
            cover = _coverage(kind[sl, k], *centre[sl, k].T, radius[sl, k], angle[sl, k], u, v, resolution)
            cover *= (k < count[sl])[:, None, None]
            img = img * (1 - cover[:, None]) + colour[sl, k, :, None, None] * cover[:, None]
        out[sl] = np.round(img * 255.0) / 255.0
        if ticker is not None:
            ticker.advance(sl.stop - sl.start)
    return out, kind[:, 0].copy()


@DATASETS.register("shapes", kind="images")
def shapes(
    n: int = 5000,
    resolution: int = 32,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """Procedural 32x32 RGB discs, squares and triangles (random colours, sizes, places; seeded)."""
    for key, value, low in (("n", n, 1), ("resolution", resolution, 8), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"[data] {key} = {value!r} for source 'shapes': expected an integer >= {low}")
    ticker = Ticker(int(n), progress, cancelled)
    pixels, labels = draw_shapes(int(n), int(resolution), int(seed), ticker)
    return images_dataset(pixels, "shapes", {"source": "shapes", "labels": labels, "levels": 256, "seed": int(seed)})

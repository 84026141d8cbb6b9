"""Small line plots drawn with pillow (no matplotlib), for ``schedule --plot``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .atomic import atomic_path


def _ticks(lo: float, hi: float) -> list[float]:
    return [lo + (hi - lo) * k / 4 for k in range(5)]


def draw_panel(draw: Any, box: tuple[int, int, int, int], x: np.ndarray, y: np.ndarray, title: str, color=(31, 119, 180)) -> None:
    from PIL import ImageFont

    font = ImageFont.load_default()
    left, top, right, bottom = box
    pl, pt, pr, pb = left + 64, top + 22, right - 12, bottom - 28  # plot area inside the axes
    draw.text((left + 6, top + 4), title, fill="black", font=font)
    draw.rectangle([pl, pt, pr, pb], outline=(120, 120, 120))
    ok = np.isfinite(y)
    if not ok.any():
        draw.text((pl + 8, pt + 8), "no finite values", fill="red", font=font)
        return
    x, y = x[ok], y[ok]
    x0, x1 = float(x.min()), float(x.max())
    y0, y1 = float(y.min()), float(y.max())
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-12:
        x1 = x0 + 1.0
    for v in _ticks(y0, y1):
        py = pb - (v - y0) / (y1 - y0) * (pb - pt)
        draw.line([pl - 4, py, pl, py], fill="black")
        draw.text((left + 4, py - 6), f"{v:.3g}", fill="black", font=font)
    for v in _ticks(x0, x1):
        px = pl + (v - x0) / (x1 - x0) * (pr - pl)
        draw.line([px, pb, px, pb + 4], fill="black")
        draw.text((px - 10, pb + 8), f"{v:.2g}", fill="black", font=font)
    # at most one point per pixel column keeps long curves cheap
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), 2 * (pr - pl))).astype(int))
    px = pl + (x[keep] - x0) / (x1 - x0) * (pr - pl)
    py = pb - (y[keep] - y0) / (y1 - y0) * (pb - pt)
    draw.line(list(zip(px.tolist(), py.tolist())), fill=color, width=2)


def save_panels(path: str | Path, x: np.ndarray, curves: Sequence[tuple[str, np.ndarray]], title: str = "", cols: int = 2, panel: tuple[int, int] = (420, 260)) -> Path:
    """One PNG with a panel per (title, y) curve against ``x``."""
    from PIL import Image, ImageDraw

    rows = -(-len(curves) // cols)
    head = 24 if title else 0
    img = Image.new("RGB", (cols * panel[0], rows * panel[1] + head), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 6), title, fill="black")
    for k, (name, y) in enumerate(curves):
        r, c = divmod(k, cols)
        box = (c * panel[0], head + r * panel[1], (c + 1) * panel[0], head + (r + 1) * panel[1])
        draw_panel(draw, box, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), name)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)

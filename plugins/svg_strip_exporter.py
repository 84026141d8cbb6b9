"""Example plugin: an SVG contact sheet of a denoising strip, ``svg_strip``.

A trajectory exporter (docs/INTERFACES.md, engine.export): it is called with a
trajectory reader (``engine.trajectory.TrajectoryReader``, the file ``diffusion-studio
sample --trajectory`` and the viewer write) and the output path. The sheet has a
column per chosen step, from noise to the final sample, headed by the step index, its
time t and noise level sigma, and a row per sample. Image data is embedded as PNG
tiles (``data:`` URIs, so the file stands alone); 2-D points are drawn as vector dots,
one small scatter per step. Use it from the command line:

    diffusion-studio --plugins plugins sample RUN --export svg_strip=strip.svg
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from studio.core.errors import DataError
from studio.core.registry import EXPORTERS
from studio.engine.atomic import atomic_path
from studio.engine.export import as_uint8_nhwc

TILE = 64  # pixels per tile side
GAP = 6
HEAD = 44  # height of the column headers (step, t, sigma: a line each)


def chosen_steps(count: int, columns: int) -> list[int]:
    """``columns`` steps spread evenly over ``count`` (first and last included)."""
    return sorted(set(np.linspace(0, count - 1, min(count, columns)).round().astype(int).tolist()))


def _png_uri(tile: np.ndarray) -> str:
    from PIL import Image

    img = Image.fromarray(tile[..., 0] if tile.shape[-1] == 1 else tile)
    img = img.resize((TILE, TILE), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _scatter(points: np.ndarray, x: float, y: float, bounds: tuple[float, float, float, float]) -> list[str]:
    lo_x, hi_x, lo_y, hi_y = bounds
    side = TILE * 2
    out = [f'<rect x="{x}" y="{y}" width="{side}" height="{side}" fill="white" stroke="#999"/>']
    for px, py in points:
        if np.isfinite(px) and np.isfinite(py) and lo_x <= px <= hi_x and lo_y <= py <= hi_y:
            u = x + (px - lo_x) / (hi_x - lo_x) * side
            v = y + (1.0 - (py - lo_y) / (hi_y - lo_y)) * side  # y up
            out.append(f'<circle cx="{u:.1f}" cy="{v:.1f}" r="1" fill="#1f77b4"/>')
    return out


def save_svg_strip(trajectory: Any, path: str | Path, samples: int = 8, columns: int = 8) -> Path:
    """The contact sheet of ``columns`` steps of the first ``samples`` samples."""
    count = len(trajectory)
    if count == 0:
        raise DataError(f"trajectory {trajectory.path} has no steps written")
    steps = chosen_steps(count, int(columns))
    records = [trajectory.step(i) for i in steps]
    images = str(trajectory.attrs.get("data_kind", "images")) == "images"
    parts: list[str] = []
    if images:
        rows = min(int(samples), len(records[0]["x_t"]))
        cell = TILE
        for c, rec in enumerate(records):
            tiles = as_uint8_nhwc(rec["x_t"][:rows])
            for r in range(rows):
                parts.append(
                    f'<image x="{GAP + c * (cell + GAP)}" y="{HEAD + r * (cell + GAP)}" width="{cell}" height="{cell}" '
                    f'href="{_png_uri(tiles[r])}"/>'
                )
    else:
        rows, cell = 1, TILE * 2
        final = records[-1]["x_t"]
        lo, hi = np.nanmin(final, 0), np.nanmax(final, 0)
        mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.2, 1e-6)
        bounds = (mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half)
        for c, rec in enumerate(records):
            parts += _scatter(rec["x_t"][:2000], GAP + c * (cell + GAP), HEAD, bounds)
    for c, (i, rec) in enumerate(zip(steps, records)):
        x = GAP + c * (cell + GAP)
        parts.append(f'<text x="{x}" y="12" font-size="11">step {i}</text>')
        parts.append(f'<text x="{x}" y="25" font-size="10" fill="#555">t {rec["t"]:.3g}</text>')
        parts.append(f'<text x="{x}" y="38" font-size="10" fill="#555">\u03c3 {rec["sigma"]:.3g}</text>')
    width = GAP + len(records) * (cell + GAP)
    height = HEAD + rows * (cell + GAP)
    title = escape(f"denoising strip: {trajectory.attrs.get('sampler', '')} {count} steps")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n<title>{title}</title>\n'
        f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text(svg, encoding="utf-8")
    return Path(path)


EXPORTERS.register(
    "svg_strip", save_svg_strip, description="SVG contact sheet of a denoising strip", suffix=".svg", input="trajectory"
)

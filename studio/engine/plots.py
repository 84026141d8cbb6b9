"""Small line plots drawn with pillow (no matplotlib), for ``schedule --plot`` (curves
against t, and with ``--density`` / ``--weighting`` against the log-SNR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .atomic import atomic_path


def _ticks(lo: float, hi: float) -> list[float]:
    return [lo + (hi - lo) * k / 4 for k in range(5)]


def save_panels(path: str | Path, x: np.ndarray, curves: Sequence[tuple[str, np.ndarray]], title: str = "", cols: int = 2, panel: tuple[int, int] = (420, 260)) -> Path:
    """One PNG with a panel per (title, y) curve against ``x``."""
    panels = [{"title": name, "curves": [("", x, y)]} for name, y in curves]
    return save_figure(path, panels, title=title, cols=cols, panel=panel)


# -- panels of several labelled curves, each with its own x (schedule --density / --weighting)

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]


def draw_curves(draw: Any, box: tuple[int, int, int, int], curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str,
                log_y: bool = False, ticks: Sequence[float] = (), from_zero: bool = False, log_x: bool = False) -> None:
    """Labelled curves (label, x, y) in one panel; ``log_y`` draws log10 of the positive
    values; ``ticks`` are x positions marked under the axis (a sampler's grid);
    ``from_zero`` starts the y axis at 0 (a density); ``log_x``: the x values are log10
    of the quantity, and the axis is labelled with the quantity (NFE 5, 10, ...)."""
    from PIL import ImageFont

    font = ImageFont.load_default()
    left, top, right, bottom = box
    pl, pt, pr, pb = left + 64, top + 22, right - 12, bottom - 28
    draw.text((left + 6, top + 4), title + ("  (log10)" if log_y else ""), fill="black", font=font)
    draw.rectangle([pl, pt, pr, pb], outline=(120, 120, 120))
    prepared = []
    for label, x, y in curves:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if log_y:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log10(y), np.nan)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():  # the gaps stay: each run of finite points is drawn on its own
            prepared.append((label, np.where(ok, x, np.nan), np.where(ok, y, np.nan)))
    if not prepared:
        draw.text((pl + 8, pt + 8), "no finite values", fill="red", font=font)
        return
    x0 = min(float(np.nanmin(x)) for _, x, _ in prepared)
    x1 = max(float(np.nanmax(x)) for _, x, _ in prepared)
    y0 = min(float(np.nanmin(y)) for _, _, y in prepared)
    y1 = max(float(np.nanmax(y)) for _, _, y in prepared)
    y0 = min(y0, 0.0) if from_zero else y0
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
        draw.text((px - 10, pb + 8), f"{10 ** v:.3g}" if log_x else f"{v:.3g}", fill="black", font=font)
    for v in ticks:
        if np.isfinite(v) and x0 <= v <= x1:
            px = pl + (v - x0) / (x1 - x0) * (pr - pl)
            draw.line([px, pb - 10, px, pb], fill=(200, 0, 0))
    for k, (label, x, y) in enumerate(prepared):
        color = COLORS[k % len(COLORS)]
        # at most one point per pixel column keeps long curves cheap
        keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), 2 * (pr - pl))).astype(int))
        px = pl + (x[keep] - x0) / (x1 - x0) * (pr - pl)
        py = pb - (y[keep] - y0) / (y1 - y0) * (pb - pt)
        finite = np.isfinite(px)
        runs = np.split(np.arange(len(px)), np.flatnonzero(np.diff(finite.astype(int))) + 1)
        for run in runs:
            if not finite[run[0]]:
                continue
            if len(run) > 1:
                draw.line(list(zip(px[run].tolist(), py[run].tolist())), fill=color, width=2)
            else:
                draw.ellipse([px[run[0]] - 2, py[run[0]] - 2, px[run[0]] + 2, py[run[0]] + 2], fill=color)
        if label:
            draw.text((pr - 150, pt + 4 + 12 * k), label[:26], fill=color, font=font)


def save_figure(path: str | Path, panels: Sequence[dict[str, Any]], title: str = "", cols: int = 2,
                panel: tuple[int, int] = (420, 260)) -> Path:
    """One PNG of panels, each a dict with ``title``, ``curves`` [(label, x, y)] and
    optional ``log_y``, ``ticks`` and ``from_zero`` (see :func:`draw_curves`)."""
    from PIL import Image, ImageDraw

    rows = -(-len(panels) // cols)
    head = 24 if title else 0
    img = Image.new("RGB", (cols * panel[0], rows * panel[1] + head), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 6), title, fill="black")
    for k, spec in enumerate(panels):
        r, c = divmod(k, cols)
        box = (c * panel[0], head + r * panel[1], (c + 1) * panel[0], head + (r + 1) * panel[1])
        draw_curves(draw, box, spec["curves"], spec["title"], spec.get("log_y", False), spec.get("ticks", ()), spec.get("from_zero", False),
                    spec.get("log_x", False))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)

"""The learned score of 2-D data as a vector field over the viewer's plot (no Qt).

score = -eps / sigma (docs/DESIGN.md 1), evaluated on a FIELD_GRID x FIELD_GRID grid for
many noise levels in one batched network call. The viewer runs it on a worker thread
and keeps the result per step, so scrubbing only draws (the call on the GUI thread made
the window late on a busy machine: bench/README.md, soak).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import score_from_eps

FIELD_GRID = 21  # FIELD_GRID^2 arrows


@dataclass(frozen=True)
class Field:
    """One step's arrows: the raw-scale score at the grid points, and the segments
    drawn (grid point, arrow end; pairs for ``connect="pairs"``)."""

    score: np.ndarray  # (G^2, 2)
    segments: np.ndarray  # (2 G^2, 2)
    ends: np.ndarray  # (G^2, 2)


def field_grid(bounds: tuple[float, float, float, float]) -> np.ndarray:
    x0, x1, y0, y1 = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, FIELD_GRID), np.linspace(y0, y1, FIELD_GRID))
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def score_fields(model, bounds: tuple[float, float, float, float], times: list[float]) -> list[Field]:
    """The field at each time in ``times``: arrows scaled to the grid spacing by the
    95th percentile of that step's lengths (direction and relative size are what one
    reads), clipped at 1.5 spacings."""
    method, net, info = model
    grid = field_grid(bounds)
    cells = len(grid)
    with torch.no_grad():
        xm = info.from_raw(grid)
        tt = torch.tensor(times, dtype=torch.float64).clamp(1e-5, 1.0)
        pred = method.predict(net, xm.repeat(len(times), 1), tt.repeat_interleave(cells).to(xm.dtype))
        sigma = method.schedule.sigma(tt).numpy().reshape(-1, 1, 1)
        eps = pred.eps.numpy().reshape(len(times), cells, -1)
        scores = score_from_eps(eps, sigma) / info.scale.numpy()  # d/dx_raw
    spacing = (bounds[1] - bounds[0]) / (FIELD_GRID - 1)
    out = []
    for score in scores:
        length = np.linalg.norm(score, axis=1, keepdims=True)
        scaled = score / max(float(np.quantile(length, 0.95)), 1e-12) * 0.9 * spacing
        ends = grid + np.clip(scaled, -1.5 * spacing, 1.5 * spacing)
        out.append(Field(score, np.stack([grid, ends], 1).reshape(-1, 2), ends))
    return out

"""A grid of images drawn as ONE uint8 mosaic in one ``pg.ImageItem`` (docs/PITFALLS.md:
one item with ``setImage(..., autoLevels=False)`` is far cheaper than many items)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg


def mosaic(images: np.ndarray, columns: int | None = None, padding: int = 1, fill: int = 255) -> np.ndarray:
    """uint8 ``(N, H, W, C)`` -> one ``(rows*(H+p)-p, cols*(W+p)-p, C)`` image, row-major."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    cols = max(1, columns or math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + padding) - padding, cols * (w + padding) - padding, c), fill, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        out[r * (h + padding): r * (h + padding) + h, k * (w + padding): k * (w + padding) + w] = images[i]
    return out


class ImageGridView(pg.GraphicsLayoutWidget):
    """Shows uint8 images ``(N, H, W, C)`` as a grid; ``set_images`` only updates data.

    ``columns`` fixes the number of columns (e.g. one per noise level in a strip);
    ``titles`` labels the columns above the grid.
    """

    def __init__(self, parent=None, columns: int | None = None, padding: int = 1):
        super().__init__(parent)
        self.columns = columns
        self.padding = padding
        self.setBackground("w")
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self._labels: list[pg.TextItem] = []
        self.shape: tuple[int, ...] = ()

    def set_images(self, images: np.ndarray, columns: int | None = None, titles: list[str] | None = None) -> None:
        columns = columns or self.columns
        grid = mosaic(images, columns, self.padding)
        if grid.shape[-1] == 1:
            grid = grid[..., 0]
        new_shape = grid.shape
        self.image.setImage(grid, autoLevels=False, levels=(0, 255))
        if (new_shape, bool(titles)) != self.shape:  # refit only when the layout changed
            self.shape = (new_shape, bool(titles))
            top = -0.35 * images.shape[1] if titles else 0  # room for the column titles
            self.view.setRange(xRange=(0, new_shape[1]), yRange=(top, new_shape[0]), padding=0.02)
        self._set_titles(titles, images.shape[2])

    def _set_titles(self, titles: list[str] | None, width: int) -> None:
        titles = titles or []
        while len(self._labels) < len(titles):
            label = pg.TextItem(color="k", anchor=(0.5, 1.0))
            self.view.addItem(label)
            self._labels.append(label)
        for k, label in enumerate(self._labels):
            if k < len(titles):
                label.setText(titles[k])
                label.setPos(k * (width + self.padding) + width / 2, -1)
                label.show()
            else:
                label.hide()

    def clear_images(self) -> None:
        self.image.clear()
        self.shape = ()
        self._set_titles(None, 0)

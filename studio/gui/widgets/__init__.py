"""Reusable widgets of the app: image grid, 2-D scatter, message banner."""

from .banner import MessageBanner
from .image_grid import ImageGridView, mosaic
from .scatter import ScatterView

import pyqtgraph as pg

# white plots, no OpenGL (offscreen has none, PITFALLS.md); set once for every view
pg.setConfigOptions(useOpenGL=False, antialias=True, background="w", foreground="k")

__all__ = ["ImageGridView", "MessageBanner", "ScatterView", "mosaic"]

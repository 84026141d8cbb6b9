"""Reusable widgets of the app: image grid, 2-D scatter, message banner, the controls-beside-views layout."""

from .banner import MessageBanner
from .controls_split import controls_beside
from .image_grid import ImageGridView, mosaic
from .scatter import ScatterView

import pyqtgraph as pg

# white plots, no OpenGL (offscreen has none, PITFALLS.md); set once for every view
pg.setConfigOptions(useOpenGL=False, antialias=True, background="w", foreground="k")

__all__ = ["ImageGridView", "MessageBanner", "ScatterView", "controls_beside", "mosaic"]

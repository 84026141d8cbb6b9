"""Reusable widgets of the app: image grid, 2-D scatter, message banner, the controls-beside-views layout,
and the parameter form built from a factory's signature or declared option specs."""

from .banner import MessageBanner
from .controls_split import controls_beside
from .image_grid import ImageGridView, mosaic
from .parameter_form import ParameterForm
from .scatter import ScatterView

import pyqtgraph as pg

# white plots, no OpenGL (offscreen has none, docs/PITFALLS.md); set once for every view
pg.setConfigOptions(useOpenGL=False, antialias=True, background="w", foreground="k")

__all__ = ["ImageGridView", "MessageBanner", "ParameterForm", "ScatterView", "controls_beside", "mosaic"]

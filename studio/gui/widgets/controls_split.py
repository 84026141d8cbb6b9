"""The layout the training monitor and the viewer share: a column of controls that
scrolls vertically on the left, the views on the right taking the rest of the width."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QSplitter, QWidget


def controls_beside(controls: QWidget, views: QWidget, controls_width: int) -> QSplitter:
    """``controls`` in a vertical-only scroll area (at least ``controls_width`` wide) beside
    ``views``; the splitter gives extra width to the views."""
    scroll = QScrollArea()
    scroll.setWidget(controls)
    scroll.setWidgetResizable(True)
    scroll.setMinimumWidth(controls_width)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(scroll)
    split.addWidget(views)
    split.setStretchFactor(1, 1)
    split.setSizes([controls_width + 25, 1000])  # room for the scroll bar
    return split

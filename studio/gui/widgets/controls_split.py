"""The layout the training monitor and the viewer share: a column of controls that
scrolls vertically on the left, the views on the right taking the rest of the width."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import QScrollArea, QSplitter, QWidget


class ControlsScroll(QScrollArea):
    """A vertical-only scroll area never narrower than its column's minimum width: with
    the horizontal bar off, a plain QScrollArea let the splitter squeeze the column and
    cut its buttons and fields at the right edge (seen in a grab of the viewer)."""

    def __init__(self, controls: QWidget, controls_width: int):
        super().__init__()
        self._width = controls_width
        self.setWidget(controls)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        controls.installEventFilter(self)  # its minimum changes as forms fill: ask for it again

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        hint = super().minimumSizeHint()
        needed = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        hint.setWidth(max(hint.width(), self._width, needed))
        return hint

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)


def controls_beside(controls: QWidget, views: QWidget, controls_width: int) -> QSplitter:
    """``controls`` in a vertical-only scroll area (at least ``controls_width`` wide, and
    never narrower than they need) beside ``views``; the splitter gives extra width to
    the views."""
    scroll = ControlsScroll(controls, controls_width)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(scroll)
    split.addWidget(views)
    split.setStretchFactor(1, 1)
    split.setCollapsible(0, False)
    split.setSizes([controls_width + 25, 1000])  # room for the scroll bar
    return split

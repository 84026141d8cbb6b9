"""PySide6 6.12.0 on Python 3.11 crashed after a few thousand Signal.emit() calls
(docs/PITFALLS.md); pyqtgraph emits on every setImage. This must survive ~10,000."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.gui.widgets import ImageGridView


class Emitter(QObject):
    ping = Signal(int)


def test_ten_thousand_signals(qtbot):
    e = Emitter()
    got = []
    e.ping.connect(got.append)
    for i in range(10_000):
        e.ping.emit(i)
    assert len(got) == 10_000


def test_many_set_image_calls(qtbot):
    view = ImageGridView(columns=4)
    qtbot.addWidget(view)
    images = np.zeros((8, 4, 4, 3), np.uint8)
    for i in range(2000):  # each setImage emits several pyqtgraph signals
        images[:] = i % 256
        view.set_images(images)
    assert int(view.image.image.min()) == 1999 % 256  # the white padding is 255

"""Dock panels of the main window.

One package per panel (``schedule/``, ``training/``, ``viewer/``; the data panel is one
file, ``data_panel.py``); shared form widgets live in ``studio.gui.widgets``. A panel is
a view: the model it shows lives in ``studio.session`` (``AppState`` and the sessions).
``PANELS`` lists the panels the app always shows, in order; ``studio.gui.app.build_window``
adds each with ``MainWindow.add_panel``. A panel is a QWidget built as
``factory(state)`` (or ``factory(state, window)`` when it reports progress in the status
bar); see ``studio.gui.main_window`` for the hooks it may define.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .data_panel import DataPanel
from .runs import RunsPanel
from .schedule import ScheduleEditor
from .training import TrainingPanel
from .samplers import SamplersPanel
from .viewer import ViewerPanel


@dataclass(frozen=True)
class PanelSpec:
    key: str  # dock objectName, remembered in QSettings
    title: str
    factory: Callable  # factory(state) or factory(state, window) -> QWidget
    area: str = "right"  # left | right | top | bottom
    tabify_with: str | None = None  # key of a panel to share a tabbed dock area with
    needs_window: bool = False  # pass the MainWindow too (status-bar progress)


PANELS: list[PanelSpec] = [
    PanelSpec("data", "Data", DataPanel, area="left"),
    PanelSpec("schedule", "Schedule editor", ScheduleEditor, area="right"),
    PanelSpec("training", "Training", TrainingPanel, area="right", tabify_with="schedule", needs_window=True),
    PanelSpec("viewer", "Reverse-process viewer", ViewerPanel, area="right", tabify_with="schedule", needs_window=True),
    PanelSpec("samplers", "Samplers", SamplersPanel, area="right", tabify_with="schedule", needs_window=True),
    PanelSpec("runs", "Runs", RunsPanel, area="right", tabify_with="schedule", needs_window=True),
]

__all__ = ["PANELS", "PanelSpec", "DataPanel", "RunsPanel", "SamplersPanel", "ScheduleEditor", "TrainingPanel", "ViewerPanel"]

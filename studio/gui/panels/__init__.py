"""Dock panels of the main window.

One package per panel (``schedule/``, ``training/``, ``viewer/``; the data panel is one
file, ``data_panel.py``); shared form widgets live in ``studio.gui.widgets``. A panel is
a view: the model it shows lives in ``studio.session`` (``AppState`` and the sessions).
``PANELS`` lists the panels the app always shows, in order; ``studio.gui.app.build_window``
gives each a dock with ``MainWindow.add_panel(..., factory=...)`` and the window builds it
when first needed (``window.panel(key)``). A panel is a QWidget built as ``cls(state)``
(or ``cls(state, window)`` when it reports progress in the status bar); see
``studio.gui.main_window`` for the hooks it may define. ``PanelSpec.widget_class`` names
the class as ``"module:Class"`` so that listing the panels imports none of them (with
pyqtgraph and torch that takes seconds: the window is on screen before).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

@dataclass(frozen=True)
class PanelSpec:
    key: str  # dock objectName, remembered in QSettings
    title: str
    widget_class: str  # "module:Class", imported when the panel is built
    area: str = "right"  # left | right | top | bottom
    tabify_with: str | None = None  # key of a panel to share a tabbed dock area with
    needs_window: bool = False  # pass the MainWindow too (status-bar progress)

    @property
    def module(self) -> str:
        return self.widget_class.split(":")[0]

    @property
    def class_name(self) -> str:
        return self.widget_class.split(":")[1]

    def load_class(self) -> type:
        return getattr(import_module(self.module), self.class_name)

    def build(self, state, window):
        cls = self.load_class()
        return cls(state, window) if self.needs_window else cls(state)


PANELS: list[PanelSpec] = [
    PanelSpec("data", "Data", "studio.gui.panels.data_panel:DataPanel", area="left"),
    PanelSpec("schedule", "Schedule editor", "studio.gui.panels.schedule:ScheduleEditor", area="right"),
    PanelSpec("training", "Training", "studio.gui.panels.training:TrainingPanel", area="right",
              tabify_with="schedule", needs_window=True),
    PanelSpec("viewer", "Reverse-process viewer", "studio.gui.panels.viewer:ViewerPanel", area="right",
              tabify_with="schedule", needs_window=True),
    PanelSpec("samplers", "Samplers", "studio.gui.panels.samplers:SamplersPanel", area="right",
              tabify_with="schedule", needs_window=True),
    PanelSpec("runs", "Runs", "studio.gui.panels.runs:RunsPanel", area="right", tabify_with="schedule",
              needs_window=True),
]


def __getattr__(name: str):
    """The panel classes this package exports, imported on first use (PEP 562)."""
    for spec in PANELS:
        if spec.class_name == name:
            return spec.load_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PANELS", "PanelSpec", "DataPanel", "RunsPanel", "SamplersPanel", "ScheduleEditor", "TrainingPanel", "ViewerPanel"]

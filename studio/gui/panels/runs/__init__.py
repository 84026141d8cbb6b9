"""The Runs panel: runs side by side, a view over ``studio.session.runs.RunsSession``
(the table, overlaid curves, the settings that differ, row actions)."""

from .panel import RunsPanel

__all__ = ["RunsPanel"]

"""The schedule editor panel: schedules overlaid (log-SNR, alpha, sigma, ...), parameters,
draggable control points, diagnostics and the forward-process preview."""

from .editor import ScheduleEditor

__all__ = ["ScheduleEditor"]

"""The app's shared state lives in the Qt-free session layer; re-exported here."""

from studio.session.state import PALETTE, AppState, ScheduleEntry

__all__ = ["AppState", "ScheduleEntry", "PALETTE"]

"""The training monitor's event log: checkpoints, warnings, NaN stops, one line each."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit

COLORS = {"info": "#222222", "warning": "#8a5a00", "error": "#b0201a"}


class EventLog(QPlainTextEdit):
    """Read-only, bounded (old lines drop off), newest at the bottom."""

    def __init__(self, max_lines: int = 2000, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.lines: list[tuple[str, str]] = []  # (level, message), for tests and export

    def add(self, message: str, level: str = "info") -> None:
        self.lines.append((level, message))
        if len(self.lines) > self.maximumBlockCount():
            del self.lines[: len(self.lines) - self.maximumBlockCount()]
        stamp = time.strftime("%H:%M:%S")
        color = COLORS.get(level, COLORS["info"])
        self.appendHtml(f"<span style='color:#888'>{stamp}</span> "
                        f"<span style='color:{color}'>{html.escape(message)}</span>")

    def text(self) -> str:
        return "\n".join(m for _, m in self.lines)

"""An inline message strip: errors, warnings and notes shown where they happened.

Panels show bad input here (naming the key, file or value) instead of a modal dialog,
so the window stays usable and the last good view stays on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

_STYLES = {
    "error": "background:#fde2e1; color:#8a1f11; border:1px solid #e8a29a;",
    "warning": "background:#fff4d6; color:#6b4e00; border:1px solid #e6c870;",
    "info": "background:#e3f0fb; color:#0b3d66; border:1px solid #9cc3e6;",
}


class MessageBanner(QLabel):
    """A label that is hidden when empty; ``show_error``/``show_warning``/``show_info``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        self.level = level
        self.setStyleSheet(f"QLabel {{ {_STYLES[level]} border-radius:3px; padding:4px 6px; }}")
        self.setText(text)
        self.show()

    def show_error(self, text: str) -> None:
        self.show_message(text, "error")

    def show_warning(self, text: str) -> None:
        self.show_message(text, "warning")

    def show_info(self, text: str) -> None:
        self.show_message(text, "info")

    def clear(self) -> None:  # noqa: D401 - QLabel.clear plus hiding
        super().clear()
        self.level = ""
        self.hide()

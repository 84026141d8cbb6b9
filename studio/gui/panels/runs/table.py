"""The runs table: one row per ``RunSummary``, sortable by any column.

Display text and a sort key per cell (``SORT_ROLE``: numbers sort as numbers, an empty
figure last); a selected run's name carries the colour of its curves.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor

from studio.engine.run_index import RunSummary, format_value

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
STATE_COLORS = {"running": "#009E73", "stopped": "#E69F00", "failed": "#D55E00", "unknown": "#999999"}
# the figures of the last `evaluate` shown as columns (engine.evaluate's keys)
EVALUATION_COLUMNS = (("sliced_wasserstein", "SW"), ("mmd", "MMD"), ("bits_per_dim", "bits/dim"))
COLUMNS = ("Run", "State", "Method", "Schedule", "Network", "Step", "Loss", *(t for _, t in EVALUATION_COLUMNS), "Modified")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(time.time() - seconds))


class RunsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[RunSummary] = []
        self.colors: dict[Path, str] = {}  # selected run -> its curves' colour

    def set_runs(self, runs: list[RunSummary]) -> bool:
        """Show ``runs``; True when the rows are the same runs as before (updated in
        place, the selection stays), False when the table was rebuilt."""
        same = [r.path for r in runs] == [r.path for r in self.runs]
        if same:
            self.runs = list(runs)
            if runs:
                self.dataChanged.emit(self.index(0, 0), self.index(len(runs) - 1, len(COLUMNS) - 1))
        else:
            self.beginResetModel()
            self.runs = list(runs)
            self.endResetModel()
        return same

    def set_colors(self, colors: dict[Path, str]) -> None:
        self.colors = dict(colors)
        if self.runs:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.runs) - 1, 0))

    def row_of(self, path: Path) -> int:
        for i, r in enumerate(self.runs):
            if r.path == path:
                return i
        return -1

    # --- Qt model ----------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run, column = self.runs[index.row()], COLUMNS[index.column()]
        if role == PATH_ROLE:
            return str(run.path)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(run, column)
        if role == SORT_ROLE:
            return self.sort_key(run, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return run.error or str(run.path)
        if role == Qt.ItemDataRole.ForegroundRole and column == "State" and run.state in STATE_COLORS:
            return QColor(STATE_COLORS[run.state])
        if role == Qt.ItemDataRole.DecorationRole and column == "Run" and run.path in self.colors:
            return QColor(self.colors[run.path])
        if role == Qt.ItemDataRole.TextAlignmentRole and column not in ("Run", "State", "Method", "Schedule", "Network"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def value(run: RunSummary, column: str) -> Any:
        evaluation = dict(EVALUATION_COLUMNS)
        keys = {v: k for k, v in evaluation.items()}
        if column in keys:
            return run.evaluation.get(keys[column])
        return {
            "Run": run.name, "State": run.state, "Method": run.method, "Schedule": run.schedule,
            "Network": run.network, "Step": run.step, "Loss": run.loss, "Modified": run.modified,
        }[column]

    def text(self, run: RunSummary, column: str) -> str:
        value = self.value(run, column)
        if column == "Step":
            return f"{run.step} / {run.total_steps}" if run.total_steps else str(run.step)
        if column == "Modified":
            return _age(max(0.0, time.time() - run.modified)) if run.modified else ""
        if value is None:
            return ""
        return format_value(float(value)) if isinstance(value, (int, float)) and column != "Run" else str(value)

    def sort_key(self, run: RunSummary, column: str) -> Any:
        value = self.value(run, column)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else math.inf
        if value is None:
            return math.inf if column not in ("Run", "State", "Method", "Schedule", "Network") else ""
        return str(value)

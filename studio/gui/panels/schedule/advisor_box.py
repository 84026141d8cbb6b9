"""The schedule advisor in the editor: end points suggested from the loaded data
(``studio.core.advisor``: Song & Ermon 2020 techniques 1-2 for NCSN, quantisation and
prior KL for VP), each with its reason; "Apply" adds the schedule built from them.

The all-pairs distances of a big set take a moment, so advice is computed on a worker
thread (superqt ``create_worker``; a newer request supersedes an older one)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout
from superqt.utils import create_worker

from studio.core.advisor import Advice, advise
from studio.core.errors import StudioError


def _advise(generation: int, dataset, schedule):
    """Runs on the worker thread: never raises, returns (generation, advice, error)."""
    try:
        return generation, advise(dataset, schedule), None
    except StudioError as e:
        return generation, None, str(e)


class AdvisorBox(QGroupBox):
    """Suggest / Apply for the editor's selected schedule; ``selected()`` returns the
    schedule to advise (or None), ``applied(index)`` is called with the new entry's index."""

    def __init__(self, state, selected, applied, parent=None):
        super().__init__("Advisor (from the loaded data)", parent)
        self.state = state
        self._selected = selected
        self._applied = applied
        self.advice: Advice | None = None
        self._generation = 0
        self._worker = None
        self.suggest_button = QPushButton("Suggest")
        self.suggest_button.setToolTip("End points for the selected schedule's family from the loaded data")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Add the suggested schedule to the list (the selected one is kept to compare)")
        self.apply_button.setEnabled(False)
        self.text = QLabel("Load data, then Suggest.")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.suggest_button)
        row.addWidget(self.apply_button)
        col = QVBoxLayout(self)
        col.addLayout(row)
        col.addWidget(self.text)
        self.suggest_button.clicked.connect(self.suggest)
        self.apply_button.clicked.connect(self.apply)
        state.dataset_changed.connect(self._on_stale)
        state.schedule_edited.connect(self._on_stale)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _on_stale(self, *_: object) -> None:
        if self.advice is not None:
            self.text.setText(self.text.text() + "<br><i>(the data or schedule changed: Suggest again)</i>")
        self.advice = None
        self.apply_button.setEnabled(False)

    def suggest(self) -> None:
        dataset = self.state.dataset
        schedule = self._selected()
        if dataset is None or schedule is None:
            self.text.setText("Load data first." if dataset is None else "Select a schedule.")
            return
        self._generation += 1
        self.advice = None
        self.apply_button.setEnabled(False)
        self.text.setText(f"measuring {len(dataset)} points…")
        worker = create_worker(_advise, self._generation, dataset, schedule, _start_thread=False)
        # superqt's signal object lives in the GUI thread; connect bound slots only (PITFALLS)
        worker.returned.connect(self._on_advice)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_finished(self) -> None:
        self._worker = None

    def _on_advice(self, result) -> None:
        generation, advice, error = result
        if generation != self._generation:
            return  # a newer request is under way
        if error is not None:
            self.text.setText(f"<span style='color:#b00'>{html.escape(error)}</span>")
            return
        self.advice = advice
        lines = [f"<b>{html.escape(s.key)} = {s.value:.4g}</b>: {html.escape(s.reason)}" for s in advice.suggestions]
        lines += [f"<i>{html.escape(n)}</i>" for n in advice.notes]
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in advice.schedule.params().items() if k != "points")
        lines.append(f"Apply adds: <b>{html.escape(advice.schedule.family)}</b> {html.escape(params)}")
        self.text.setText("<br>".join(lines))
        self.apply_button.setEnabled(True)

    def apply(self) -> int:
        if self.advice is None:
            return -1
        index = self.state.add_schedule(f"advised {self.advice.schedule.family}", self.advice.schedule)
        self.apply_button.setEnabled(False)
        self._applied(index)
        return index

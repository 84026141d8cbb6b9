"""The schedule editor panel: design a noise schedule by looking at it.

A list of schedules overlaid in the linked plots (add, remove, rename by double-click);
the selected one is edited through a form built from its factory's signature (so
plugin schedules get editors too) or, for a custom schedule, by dragging the control
points of its log-SNR curve. Below: the loaded data noised by the selected schedule,
diagnostics and warnings. Save/load as JSON; "Use for training" sets
``state.training_schedule``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.registry import SCHEDULES
from studio.core.schedules import Schedule, make_schedule, schedule_from_dict
from studio.session import AppState
from studio.gui.widgets import MessageBanner

from .control_points import LAM_LIMIT, MIN_DLAM
from .forward_preview import ForwardPreview
from studio.gui.widgets import ParameterForm
from .diagnostics import diagnose
from .plots import SchedulePlots
from .advisor_box import AdvisorBox
from .lambda_view import LambdaView

CUSTOM = "custom"
EDIT_DELAY_MS = 150  # typing in a parameter recomputes once the user pauses
DIAGNOSE_DELAY_MS = 60


def points_from(schedule: Schedule, k: int = 6) -> list[list[float]]:
    """Control points sampling ``schedule``'s log-SNR at k evenly spaced t (clamped to
    +-LAM_LIMIT, strictly decreasing), so switching to custom starts from the curve seen."""
    t = np.linspace(0.0, 1.0, k)
    with torch.no_grad():
        lam = schedule.log_snr(torch.tensor(t, dtype=torch.float64)).double().numpy()
    lam = np.clip(np.nan_to_num(lam, nan=-LAM_LIMIT, neginf=-LAM_LIMIT, posinf=LAM_LIMIT), -LAM_LIMIT, LAM_LIMIT)
    for i in range(1, k):
        lam[i] = min(lam[i], lam[i - 1] - MIN_DLAM)
    return [[float(a), float(b)] for a, b in zip(t, lam)]


def schedule_values(schedule: Schedule) -> dict:
    return {k: v for k, v in schedule.to_dict().items() if k not in ("family", "state")}


class ScheduleEditor(QWidget):
    def __init__(self, state: AppState, parent=None):
        super().__init__(parent)
        self.state = state
        self.current = -1

        # --- left: list, family, parameters, actions, diagnostics ----------------------
        self.list = QListWidget()
        self.list.setMaximumHeight(120)
        self.list.setToolTip("Schedules overlaid in the plots; double-click to rename")
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add a schedule of the selected family with default parameters")
        self.remove_button = QPushButton("Remove")
        self.family = QComboBox()
        self._fill_families()
        self.form = ParameterForm()
        self.custom_hint = QLabel("Drag the round points on the log-SNR plot. Double-click the plot to add "
                                  "a point, double-click a point to remove it.")
        self.custom_hint.setWordWrap(True)
        self.banner = MessageBanner()
        self.load_button = QPushButton("Load…")
        self.save_button = QPushButton("Save…")
        self.export_button = QPushButton("Export PNG…")
        self.train_button = QPushButton("Use for training")
        self.train_button.setToolTip("The training panel trains with this schedule")
        self.train_label = QLabel("Training uses: (none)")
        self.train_label.setWordWrap(True)

        self.diag_labels = {key: QLabel("–") for key in ("steps", "terminal", "kl", "cross", "jump")}
        diag_box = QGroupBox("Diagnostics")
        diag_form = QFormLayout(diag_box)
        for key, text in (("steps", "steps"), ("terminal", "terminal SNR"), ("kl", "prior KL"),
                          ("cross", "SNR = 1 at t"), ("jump", "max step Δλ")):
            self.diag_labels[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            diag_form.addRow(text, self.diag_labels[key])
        self.warnings = MessageBanner()
        self.lambda_view = LambdaView(state)  # the log-SNR view (tab beside the plots against t)
        diag_form.addRow("training in λ bands", self.lambda_view.bands_label)
        diag_form.addRow(self.warnings)

        left = QWidget()
        col = QVBoxLayout(left)
        col.addWidget(QLabel("Schedules"))
        col.addWidget(self.list)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        col.addLayout(row)
        params_box = QGroupBox("Selected schedule")
        params = QVBoxLayout(params_box)
        family_row = QFormLayout()
        family_row.addRow("family", self.family)
        params.addLayout(family_row)
        params.addWidget(self.form)
        params.addWidget(self.custom_hint)
        params.addWidget(self.banner)
        col.addWidget(params_box)
        row = QHBoxLayout()
        for b in (self.load_button, self.save_button, self.export_button):
            row.addWidget(b)
        col.addLayout(row)
        col.addWidget(self.train_button)
        col.addWidget(self.train_label)
        col.addWidget(diag_box)
        self.advisor = AdvisorBox(state, self._selected_schedule, self.select)
        col.addWidget(self.advisor)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(270)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # --- right: plots with hover readout, forward preview --------------------------
        self.plots = SchedulePlots(self._on_points_moved)
        self.readout = QLabel("Hover over a plot to read the values at t.")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.preview = ForwardPreview()
        plots_box = QWidget()
        pcol = QVBoxLayout(plots_box)
        pcol.setContentsMargins(0, 0, 0, 0)
        self.views = QTabWidget()
        self.views.addTab(self.plots, "against t")
        self.views.addTab(self.lambda_view, "on the log-SNR axis: density, weighting, grid")
        pcol.addWidget(self.views, 1)
        pcol.addWidget(self.readout)
        preview_box = QGroupBox("Forward process q(x_t | x_0): same noise at every t")
        QVBoxLayout(preview_box).addWidget(self.preview)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(plots_box)
        right.addWidget(preview_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)

        # --- timers: parameter typing and diagnostics are coalesced --------------------
        self._edit_timer = QTimer(self, singleShot=True, interval=EDIT_DELAY_MS)
        self._edit_timer.timeout.connect(self.apply_parameters)
        self._diag_timer = QTimer(self, singleShot=True, interval=DIAGNOSE_DELAY_MS)
        self._diag_timer.timeout.connect(self.update_diagnostics)

        # --- wiring --------------------------------------------------------------------
        self.list.currentRowChanged.connect(self.select)
        self.list.itemChanged.connect(self._on_item_renamed)
        self.add_button.clicked.connect(self.add_schedule)
        self.remove_button.clicked.connect(self.remove_selected)
        self.family.activated.connect(self._on_family_chosen)
        self.form.edited.connect(self._edit_timer.start)
        self.load_button.clicked.connect(self._ask_load)
        self.save_button.clicked.connect(self._ask_save)
        self.export_button.clicked.connect(self._ask_export)
        self.train_button.clicked.connect(self.use_for_training)
        self.plots.hovered.connect(self._on_hover)
        self.plots.scene().sigMouseClicked.connect(self._on_plot_clicked)

        state.schedules_changed.connect(self._on_schedules_changed)
        state.schedule_edited.connect(self._on_schedule_edited)
        state.dataset_changed.connect(self._on_dataset_changed)
        state.training_schedule_changed.connect(self._on_training_changed)
        state.plugins_changed.connect(self._fill_families)

        self.preview.set_dataset(state.dataset)
        self._on_schedules_changed()
        self._on_training_changed(state.training_schedule)

    # --- the list --------------------------------------------------------------------
    def _on_schedules_changed(self) -> None:
        entries = self.state.schedules
        self.list.blockSignals(True)
        self.list.clear()
        for entry in entries:
            pix = QPixmap(12, 12)
            pix.fill(QColor(entry.color))
            item = QListWidgetItem(QIcon(pix), entry.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            if entry.schedule is self.state.training_schedule:
                font = QFont()
                font.setBold(True)
                item.setFont(font)
                item.setToolTip("used for training")
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.plots.set_entries(entries)
        self.remove_button.setEnabled(len(entries) > 1)
        if entries:
            self.list.setCurrentRow(min(max(self.current, 0), len(entries) - 1))
            self.select(self.list.currentRow())
        else:
            self.current = -1

    def _on_item_renamed(self, item: QListWidgetItem) -> None:
        self.state.rename_schedule(self.list.row(item), item.text())

    def add_schedule(self) -> int:
        family = self.family.currentData() or "linear"
        try:
            sched = make_schedule(family)
        except StudioError as e:  # a plugin factory whose defaults do not build
            self.banner.show_error(f"cannot add {family!r}: {e}")
            return -1
        self.current = self.state.add_schedule(family, sched)
        self._on_schedules_changed()
        return self.current

    def remove_selected(self) -> None:
        if len(self.state.schedules) > 1 and self.current >= 0:
            self.state.remove_schedule(self.current)

    def select(self, index: int) -> None:
        if not 0 <= index < len(self.state.schedules):
            return
        self.current = index
        if self.list.currentRow() != index:
            self.list.setCurrentRow(index)
        entry = self.state.schedules[index]
        sched = entry.schedule
        self.family.setCurrentIndex(max(0, self.family.findData(sched.family)))
        self._build_form(sched)
        self.banner.clear()
        self._show_selected(entry)
        self.lambda_view.set_selected(index)

    def _selected_schedule(self):
        return self.state.schedules[self.current].schedule if 0 <= self.current < len(self.state.schedules) else None

    def _build_form(self, sched: Schedule) -> None:
        if sched.family in SCHEDULES:
            self.form.build(SCHEDULES.get(sched.family), schedule_values(sched), hidden=("points",))
        self.custom_hint.setVisible(sched.family == CUSTOM)

    def _show_selected(self, entry) -> None:
        sched = entry.schedule
        points = np.array(sched.points) if sched.family == CUSTOM else None
        self.plots.show_control_points(points, entry.color)
        self.preview.set_schedule(sched)
        self._diag_timer.start()

    # --- editing -----------------------------------------------------------------------
    def _fill_families(self, *_: object) -> None:
        """Every registered family (plugins' too, after they load); keeps the choice."""
        current = self.family.currentData()
        self.family.clear()
        for entry in SCHEDULES.entries():
            kind = entry.meta.get("kind", "")
            self.family.addItem(f"{entry.name}  ({kind})" if kind else entry.name, entry.name)
            self.family.setItemData(self.family.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole)
        if current is not None and self.family.findData(current) >= 0:
            self.family.setCurrentIndex(self.family.findData(current))

    def _on_family_chosen(self, combo_index: int) -> None:
        family = self.family.itemData(combo_index)
        old = self.state.schedules[self.current].schedule
        if family == old.family:
            return
        params = {"points": points_from(old), "steps": old.steps} if family == CUSTOM else {}
        try:
            sched = make_schedule(family, **params)
        except StudioError as e:
            self.banner.show_error(str(e))
            return
        self.state.set_schedule(self.current, sched)
        self._build_form(sched)

    def apply_parameters(self) -> bool:
        """Rebuild the selected schedule from the form; a bad value is shown inline,
        naming the parameter, and the last good curves stay."""
        if self.current < 0:
            return False
        family = self.family.currentData()
        old = self.state.schedules[self.current].schedule
        try:
            params = self.form.values()
            if family == CUSTOM:
                params["points"] = old.points
            sched = make_schedule(family, **params)
        except StudioError as e:
            self.banner.show_error(str(e))
            m = re.search(r"parameter (\w+)", str(e))
            self.form.mark_invalid(m.group(1) if m else None)
            return False
        self.banner.clear()
        self.form.mark_invalid(None)
        self.state.set_schedule(self.current, sched)
        return True

    def _on_points_moved(self, points: np.ndarray) -> None:
        old = self.state.schedules[self.current].schedule
        try:
            sched = make_schedule(CUSTOM, points=points.tolist(), steps=old.steps)
        except StudioError as e:  # clamping keeps points valid; report rather than crash
            self.banner.show_error(str(e))
            return
        self.state.set_schedule(self.current, sched)

    def _on_plot_clicked(self, ev) -> None:
        entry = self.state.schedules[self.current] if self.current >= 0 else None
        if entry is None or entry.schedule.family != CUSTOM or not ev.double():
            return
        vb = self.plots.plots["log_snr"].vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        item = self.plots.control_points
        index = item.index_at(item.mapFromScene(ev.scenePos()))
        points = [list(p) for p in entry.schedule.points]
        if index is not None:
            if 0 < index < len(points) - 1:
                del points[index]
        else:
            t = float(vb.mapSceneToView(ev.scenePos()).x())
            if not 0.0 < t < 1.0 or any(abs(t - p[0]) < 1e-3 for p in points):
                return
            with torch.no_grad():  # on the curve, so the shape does not change
                lam = float(entry.schedule.log_snr(torch.tensor([t], dtype=torch.float64)))
            points.append([t, lam])
            points.sort()
        ev.accept()
        self._on_points_moved(np.array(points))

    def _on_schedule_edited(self, index: int) -> None:
        entry = self.state.schedules[index]
        self.plots.update_entry(index, entry)
        if index == self.current:
            self._show_selected(entry)

    # --- training, files ---------------------------------------------------------------
    def use_for_training(self) -> None:
        if self.current >= 0:
            self.state.use_for_training(self.current)

    def _on_training_changed(self, schedule) -> None:
        names = [e.name for e in self.state.schedules if e.schedule is schedule]
        self.train_label.setText(f"Training uses: {names[0]}" if names else "Training uses: (none)")
        for i, e in enumerate(self.state.schedules):
            item = self.list.item(i)
            if item is not None:
                font = item.font()
                font.setBold(e.schedule is schedule)
                item.setFont(font)

    def save_schedule(self, path: str | Path) -> Path:
        """Write the selected schedule as JSON (``Schedule.to_dict``), atomically."""
        path = Path(path)
        text = json.dumps(self.state.schedules[self.current].schedule.to_dict(), indent=2)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def load_schedule(self, path: str | Path) -> int:
        """Add the schedule of a JSON file as a new entry; a bad file is shown by name."""
        path = Path(path)
        try:
            sched = schedule_from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, AttributeError) as e:  # StudioError is a ValueError
            self.banner.show_error(f"cannot load schedule {path}: {e}")
            return -1
        self.banner.clear()
        self.current = self.state.add_schedule(path.stem, sched)
        self._on_schedules_changed()
        return self.current

    def export_plots(self, folder: str | Path) -> list[Path]:
        """Main window's File > Export plots: the linked plots as one PNG."""
        return [self.plots.export_png(Path(folder) / "schedule_plots.png"),
                self.lambda_view.export_png(Path(folder) / "schedule_log_snr.png")]

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load schedule", "", "Schedule JSON (*.json)")
        if path:
            self.load_schedule(path)

    def _ask_save(self) -> None:
        name = self.state.schedules[self.current].name if self.current >= 0 else "schedule"
        path, _ = QFileDialog.getSaveFileName(self, "Save schedule", f"{name}.json", "Schedule JSON (*.json)")
        if path:
            try:
                self.save_schedule(path)
            except OSError as e:
                self.banner.show_error(f"cannot write {path}: {e}")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "schedule_plots.png", "PNG image (*.png)")
        if path:
            try:
                self.plots.export_png(path)
            except OSError as e:
                self.banner.show_error(f"cannot write {path}: {e}")

    # --- data, hover, diagnostics -------------------------------------------------------
    def _on_dataset_changed(self, dataset) -> None:
        self.preview.set_dataset(dataset)
        self._diag_timer.start()

    def _on_hover(self, t: float) -> None:
        parts = [f"<b>t = {t:.3f}</b>"]
        for i, e in enumerate(self.state.schedules):
            v = self.plots.values_at(i, t)
            beta = f" β={v['beta']:.3g}" if "beta" in v else ""
            parts.append(f"<span style='color:{e.color}'>■</span> {e.name}:{beta} ᾱ={v['alpha_bar']:.3g} "
                         f"σ={v['sigma']:.3g} SNR={v['snr']:.3g} λ={v['log_snr']:.3g}")
        self.readout.setText("&nbsp;&nbsp; ".join(parts))

    def update_diagnostics(self) -> None:
        if self.current < 0:
            return
        sched = self.state.schedules[self.current].schedule
        data = self.state.dataset.data if self.state.dataset is not None else None
        d = diagnose(sched, data)
        self.diagnostics = d
        self.diag_labels["steps"].setText(str(d.steps))
        self.diag_labels["terminal"].setText(f"{d.terminal_snr:.3g}")
        self.diag_labels["kl"].setText("load data to see it" if d.prior_kl_bits is None
                                       else f"{d.prior_kl_bits:.3g} bits/dim")
        self.diag_labels["cross"].setText("never" if d.t_snr_one is None else f"{d.t_snr_one:.3f}")
        self.diag_labels["jump"].setText(f"{d.max_jump:.3g} at t = {d.jump_t:.3g}")
        if d.warnings:
            self.warnings.show_warning("\n".join(d.warnings))
        else:
            self.warnings.clear()

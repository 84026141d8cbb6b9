"""The viewer's forms: what to sample (run, checkpoint, weights, sampler, steps, n, seed
and the sampler's options) and how to branch from a scrubbed step. Only samplers whose
``families`` include the run's method are offered; their option editors are built from
``Sampler.option_specs()`` (typed declarations), so no sampler has code of its own here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QWidget,
)
from superqt import QElidingLabel

from studio.core import samplers as _samplers  # noqa: F401 - registers the samplers
from studio.core.errors import StudioError
from studio.core.methods.base import sampler_family_of
from studio.core.registry import SAMPLERS
from studio.gui.widgets import ParameterForm

LATEST = "latest"
POINTS_N = 2000  # samples drawn by default for 2-D data: enough to show the distribution


def checkpoint_title(path: Path) -> str:
    """``step_00001200.safetensors`` -> ``step 1200``: short enough for the control column
    (the file name is the item's tooltip)."""
    prefix, _, number = path.stem.partition("_")
    return f"{prefix} {int(number)}" if number.isdigit() else path.stem


class ElidedComboBox(QComboBox):
    """A combo box that may be narrower than its longest item: the shown text ends in
    "…" instead of being cut mid-letter, and never widens the control column."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(8)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        option.currentText = self.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideRight, field.width())
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


def samplers_for(method_name: str) -> list[str]:
    family = sampler_family_of(method_name)  # a plugin method may be sampled as another family
    return [name for name in SAMPLERS.names() if family in getattr(SAMPLERS.get(name), "families", ())]


class SamplerFields:
    """Sampler combo, steps, seed and the chosen sampler's options (editors from its
    ``option_specs()``): shared by the sampling and branch forms."""

    def __init__(self, form: QFormLayout, steps_special: str | None = None):
        self.sampler = QComboBox()
        self.steps = QSpinBox()
        self.steps.setRange(0 if steps_special else 1, 100_000)
        if steps_special:
            self.steps.setSpecialValueText(steps_special)  # 0 shows this text
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.option_form = ParameterForm()
        form.addRow("Sampler", self.sampler)
        form.addRow("Steps", self.steps)
        form.addRow("Seed", self.seed)
        form.addRow(self.option_form)
        self._form = form
        self._values: dict[str, Any] = {}
        self.sampler.currentTextChanged.connect(self._sampler_changed)

    def option(self, name: str) -> QWidget | None:
        """The editor of option ``name`` of the chosen sampler (None if it has none)."""
        return self.option_form.editors.get(name)

    def set_option_values(self, values: dict[str, Any]) -> None:
        """Values the option editors start from (the run's ``[sample]`` options)."""
        self._values = dict(values)
        self._sampler_changed(self.sampler.currentText())

    def set_method(self, method_name: str, default: str | None = None) -> None:
        names = samplers_for(method_name)
        current = self.sampler.currentText()
        self.sampler.blockSignals(True)
        self.sampler.clear()
        self.sampler.addItems(names)
        for pick in (default, current):
            if pick in names:
                self.sampler.setCurrentText(pick)
                break
        self.sampler.blockSignals(False)
        if self.sampler.currentText() != current or not names:  # the same pick keeps its edited options
            self._sampler_changed(self.sampler.currentText())

    def _sampler_changed(self, name: str) -> None:
        specs = SAMPLERS.get(name).option_specs() if name in SAMPLERS else {}
        self.option_form.build_specs(specs, {k: v for k, v in self._values.items() if k in specs})

    def options(self, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The sampler options: ``defaults`` (the run's own, for its configured sampler)
        and every editor whose value differs from the declared default. A bad value
        raises a ``StudioError`` naming the option."""
        opts = dict(defaults or {})
        try:
            values = self.option_form.values()
        except StudioError as e:
            raise StudioError(str(e).replace("schedule parameter", f"{self.sampler.currentText()} option")) from None
        for name, value in values.items():
            if value != self.option_form.defaults.get(name) or name in opts:
                opts[name] = value
        return opts


class SamplingForm(QWidget):
    """Choose what to sample; ``run_clicked`` / ``cancel_clicked``; ``browse_clicked``
    asks for a run directory."""

    run_clicked = Signal()
    cancel_clicked = Signal()
    browse_clicked = Signal()
    model_changed = Signal()  # checkpoint or weights picked
    open_trajectory_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        # the run's folder name on a line of its own, elided in the middle (its full path
        # in the tooltip), and the buttons below it: a path beside them squeezed both
        self.run_label = QElidingLabel("no run")
        self.run_label.setElideMode(Qt.TextElideMode.ElideMiddle)
        form.addRow("Run", self.run_label)
        self.browse = QPushButton("Open run…")
        self.browse.setToolTip("Pick a run directory (also File > Open run)")
        self.open_trajectory = QPushButton("Open trajectory…")
        self.open_trajectory.setToolTip("Scrub a trajectory HDF5 written earlier (diffusion-studio sample "
                                        "--trajectory, or a file from another machine)")
        row = QHBoxLayout()
        row.addWidget(self.browse)
        row.addWidget(self.open_trajectory)
        form.addRow(row)
        self.checkpoint = ElidedComboBox()
        self.checkpoint.setToolTip("Checkpoint of the run to sample from")
        self.weights = QComboBox()
        self.weights.addItem("EMA", "ema")
        self.weights.addItem("raw", "net")
        self.weights.setToolTip("EMA of the weights (better samples) or the last-iterate weights")
        form.addRow("Checkpoint", self.checkpoint)
        form.addRow("Weights", self.weights)
        self.fields = SamplerFields(form)
        self.fields.steps.setValue(100)
        self.n = QSpinBox()
        self.n.setRange(1, 100_000)
        self.n.setValue(64)
        form.addRow("Samples", self.n)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Sample on the engine thread; scrubbing starts with the first step")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.browse.clicked.connect(self.browse_clicked)
        self.open_trajectory.clicked.connect(self.open_trajectory_clicked)
        self.checkpoint.currentIndexChanged.connect(lambda _: self.model_changed.emit())
        self.weights.currentIndexChanged.connect(lambda _: self.model_changed.emit())
        self._config_sampler: str | None = None
        self._config_options: dict[str, Any] = {}

    def set_run(self, path: Path | None, checkpoints: list[Path], method_name: str | None, sample: dict[str, Any],
                options: dict[str, Any] | None = None, points: bool = False) -> None:
        """Fill the form from a run: its checkpoints, the samplers of its method and its
        ``[sample]`` section as defaults (``options``: those of its sampler). ``points``:
        2-D data, whose sample count defaults to POINTS_N (a distribution, not 64 dots)."""
        self.run_label.setText(Path(path).name if path else "no run")
        self.run_label.setToolTip(str(path) if path else "")
        self.set_checkpoints(checkpoints)
        self._config_sampler = sample.get("sampler")
        self._config_options = dict(options or {})
        if method_name:
            self.fields.set_method(method_name, sample.get("sampler"))
        self.fields.set_option_values(self._config_options)
        if "steps" in sample:
            self.fields.steps.setValue(int(sample["steps"]))
        if points:
            self.n.setValue(max(int(sample.get("n", 0)), POINTS_N))
        elif "n" in sample:
            self.n.setValue(min(int(sample["n"]), 64))  # a grid the viewer shows whole

    def set_checkpoints(self, checkpoints: list[Path], keep: str | None = None) -> None:
        """Offer these checkpoints ("latest" first, the newest); ``keep`` stays picked."""
        self.checkpoint.blockSignals(True)
        self.checkpoint.clear()
        if checkpoints:
            self.checkpoint.addItem(f"latest ({checkpoint_title(checkpoints[-1])})", LATEST)
            self.checkpoint.setItemData(0, f"the newest checkpoint, now {checkpoints[-1].name}", Qt.ItemDataRole.ToolTipRole)
            for p in reversed(checkpoints):
                self.checkpoint.addItem(checkpoint_title(p), str(p))
                self.checkpoint.setItemData(self.checkpoint.count() - 1, p.name, Qt.ItemDataRole.ToolTipRole)
        if keep is not None:
            self.checkpoint.setCurrentIndex(max(0, self.checkpoint.findData(keep)))
        self.checkpoint.blockSignals(False)

    def checkpoint_path(self) -> str | None:
        data = self.checkpoint.currentData()
        return None if data in (None, LATEST) else data

    def job_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``engine.jobs.sample_job`` (without run and trajectory)."""
        name = self.fields.sampler.currentText()
        defaults = self._config_options if name == self._config_sampler else {}
        return {
            "sampler": name,
            "steps": int(self.fields.steps.value()),
            "n": int(self.n.value()),
            "seed": int(self.fields.seed.value()),
            "checkpoint": self.weights.currentData(),
            "checkpoint_path": self.checkpoint_path(),
            "options": self.fields.options(defaults),
        }

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)


class BranchForm(QWidget):
    """Re-run from the scrubbed step with another sampler, step count or seed, all at
    once (``branch_clicked``) or one step per click (``step_clicked``)."""

    branch_clicked = Signal()
    step_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.fields = SamplerFields(form, steps_special="same grid")
        self.fields.steps.setToolTip("Grid points from the scrubbed step to the data; 'same grid' continues the run's grid")
        self.fields.seed.setValue(1)
        self.step_button = QPushButton("Step ▸")
        self.step_button.setToolTip("Run one step of the branch from its current state")
        self.branch_button = QPushButton("Branch")
        self.branch_button.setToolTip("Run the branch from the scrubbed step to the end")
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.step_button, self.branch_button, self.cancel_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        self.status = QLabel("Scrub to a step, then Step or Branch.")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.step_button.clicked.connect(self.step_clicked)
        self.branch_button.clicked.connect(self.branch_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)

    def job_kwargs(self, remaining: int, main: dict[str, Any]) -> dict[str, Any]:
        """``remaining``: grid points left on the main run's grid; ``main``: its settings
        (the branch keeps its sampler options when it keeps its sampler)."""
        name = self.fields.sampler.currentText()
        steps = int(self.fields.steps.value()) or max(1, remaining)
        defaults = main.get("options", {}) if name == main.get("sampler") else {}
        return {"sampler": name, "steps": steps, "seed": int(self.fields.seed.value()), "options": self.fields.options(defaults)}

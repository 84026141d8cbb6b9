"""The training config as a form: method, network, data, schedule and ``[train]`` keys.

The form edits the sections of a CLI config (docs/DESIGN.md 3) and nothing else, so a config
built here runs unchanged with ``diffusion-studio train`` on a server. ``config()``
checks it with ``engine.config.parse_config`` (errors name ``[section] key``); presets
come from ``resources/configs`` (engine.presets); TOML save and load go through
``Config.to_toml`` / ``load_config``. Keys the form has no editor for (warm-up,
gradient clipping, the ``[sample]`` section ...) are kept as loaded.

``[data]`` follows the data panel (``state.data_options``) and ``[schedule]`` follows
the schedule editor's "Use for training" (``state.training_schedule``); loading a preset
or a TOML file sets both from the file until the user picks new ones, and the form then
says plainly, in its data and schedule lines, that the file overrides the Data panel and
"Use for training" (Start trains on what the form shows).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import ConfigError, StudioError
from studio.core.registry import METHODS, NETWORKS
from studio.core.schedules import Schedule
from studio.engine.atomic import write_text
from studio.engine.config import Config, build_method, default_schedule, load_config, parse_config, schedule_from_section
from studio.engine.presets import presets
from studio.session import AppState

from studio.gui.widgets import ParameterForm

# keys of the [train] section with an editor here: key -> (label, kind, minimum)
TRAIN_FIELDS = {
    "steps": ("steps", int, 1),
    "batch_size": ("batch size", int, 1),
    "lr": ("learning rate", float, 0),
    "ema_decay": ("EMA decay", float, 0),
    "seed": ("seed", int, 0),
    "log_every": ("log every (steps)", int, 1),
    "checkpoint_every": ("checkpoint every", int, 1),
    "preview_every": ("preview every (0 = off)", int, 0),
}
DEFAULT_TRAIN = {"steps": 5000, "batch_size": 512, "lr": 1e-3, "ema_decay": 0.999, "seed": 0,
                 "log_every": 10, "checkpoint_every": 1000, "preview_every": 500}
HIDDEN_METHOD = ("schedule", "steps")  # steps: the schedule's, not a method option to edit


def schedule_section(schedule: Schedule) -> dict[str, Any]:
    """The ``[schedule]`` section that rebuilds ``schedule``; a ``ConfigError`` says why
    when it cannot (a learned state, parameters TOML cannot hold)."""
    d = schedule.to_dict()
    d.pop("state", None)  # a learned schedule trains from its initial state anyway
    try:
        rebuilt = schedule_from_section(d)
    except StudioError as e:
        raise ConfigError(f"[schedule] the schedule {d.get('family')!r} cannot be written as a config: {e}") from None
    if rebuilt.to_dict().keys() != schedule.to_dict().keys() - {"state"} or type(rebuilt) is not type(schedule):
        raise ConfigError(f"[schedule] the schedule {d['family']!r} is not rebuilt by its parameters; "
                          "save it from the schedule editor and pick a built-in family")
    return d


def describe(section: dict[str, Any], name_key: str) -> str:
    """One line for a config section: ``name (key=value, ...)``."""
    rest = ", ".join(f"{k}={v}" for k, v in section.items() if k != name_key and k != "points")
    if "points" in section:
        rest = f"{len(section['points'])} control points" + (f", {rest}" if rest else "")
    return f"{section.get(name_key, '?')} ({rest})" if rest else str(section.get(name_key, "?"))


class TrainingForm(QWidget):
    """``config()`` -> checked ``Config``; ``set_config(cfg)`` shows one; ``edited`` fires
    on every change the user makes."""

    edited = Signal()

    def __init__(self, state: AppState, parent=None):
        super().__init__(parent)
        self.state = state
        self.data: dict[str, Any] = dict(state.data_options)
        self.schedule: dict[str, Any] = {}
        self.schedule_error = ""
        self.extra: dict[str, dict[str, Any]] = {"train": {}, "sample": {}}
        self.origin = ""  # "" = the app's choices; else the preset or file the sections came from

        self.preset = QComboBox()
        self.preset.addItem("(choose a preset)", None)
        for name, path in presets().items():
            self.preset.addItem(name, str(path))
        self.preset.setToolTip("Load a shipped config (resources/configs: data and schedule included)")

        self.method = QComboBox()
        self.method_form = ParameterForm()
        self.network = QComboBox()
        self.network_form = ParameterForm()
        self._fill_names()
        self.data_label = QLabel()
        self.schedule_label = QLabel()
        for label in (self.data_label, self.schedule_label):
            label.setWordWrap(True)

        self.fields: dict[str, QWidget] = {}
        for key, (_, kind, low) in TRAIN_FIELDS.items():
            if kind is int:
                w = QSpinBox()
                w.setRange(low, 2_000_000_000)
                w.setKeyboardTracking(False)
                w.valueChanged.connect(self._changed)
            else:
                w = QLineEdit()
                w.textEdited.connect(self._changed)
            w.setObjectName(key)
            self.fields[key] = w
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        if torch.cuda.is_available():
            self.device.addItem(f"CUDA ({torch.cuda.get_device_name(0)})", "cuda")
            self.device.setCurrentIndex(1)
        self.device.setToolTip("CUDA is offered when torch sees a GPU")
        # [train] tensorboard: also write RUN/tensorboard/ (engine.tensorboard_sink)
        self.tensorboard = QCheckBox("also write RUN/tensorboard/")
        if importlib.util.find_spec("tensorboard") is None:
            self.tensorboard.setEnabled(False)
            self.tensorboard.setToolTip("needs the tensorboard package: pip install 'diffusion-studio[tensorboard]'")
        else:
            self.tensorboard.setToolTip("scalars, loss by noise level and previews for `tensorboard --logdir`")
        self.tensorboard.toggled.connect(self._changed)

        top = QFormLayout()
        top.addRow("preset", self.preset)
        model_box = QGroupBox("Model")
        model = QFormLayout(model_box)
        model.addRow("method", self.method)
        model.addRow(self.method_form)
        model.addRow("network", self.network)
        model.addRow(self.network_form)
        inputs_box = QGroupBox("Data and schedule")
        inputs = QFormLayout(inputs_box)
        inputs.addRow("data", self.data_label)
        inputs.addRow("schedule", self.schedule_label)
        train_box = QGroupBox("Training")
        train = QFormLayout(train_box)
        for key, (label, _, _) in TRAIN_FIELDS.items():
            train.addRow(label, self.fields[key])
        train.addRow("device", self.device)
        train.addRow("TensorBoard", self.tensorboard)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(top)
        for box in (model_box, inputs_box, train_box):
            col.addWidget(box)

        self.method.activated.connect(self._on_method_chosen)
        self.network.activated.connect(self._on_network_chosen)
        self.method_form.edited.connect(self._changed)
        self.network_form.edited.connect(self._changed)
        self.device.activated.connect(self._changed)
        state.dataset_changed.connect(self._on_dataset_changed)
        state.training_schedule_changed.connect(self.use_schedule)
        state.plugins_changed.connect(self._on_plugins_changed)

        self._set_method(self.method.currentData() or "ddpm", {})
        self._set_network(self._default_network(), {})
        self._set_train(DEFAULT_TRAIN)
        self.use_schedule(state.training_schedule)
        self._show_data()

    # --- sections from the app state -------------------------------------------------------
    def _on_dataset_changed(self, dataset) -> None:
        self.data = dict(self.state.data_options)
        self.origin = "" if self.schedule_from_app() else self.origin
        self._show_data()
        if dataset is not None and self.network.currentData() not in (None, self._default_network()):
            self._set_network(self._default_network(), {})
        self._changed()

    def use_schedule(self, schedule: Schedule | None) -> None:
        """Train with ``schedule`` (the schedule editor's choice); None keeps the method's default."""
        self.schedule_error = ""
        self.origin = "" if self.data == dict(self.state.data_options) else self.origin
        if schedule is None:
            self.schedule = {}
        else:
            try:
                self.schedule = schedule_section(schedule)
            except ConfigError as e:
                self.schedule, self.schedule_error = {}, str(e)
        self._show_schedule()
        self._changed()

    def _fill_names(self) -> bool:
        """Every registered method and network (plugins' too) in the two lists, keeping
        the choices; False when a chosen one is gone (its plugin was unloaded)."""
        kept = True
        for combo, registry in ((self.method, METHODS), (self.network, NETWORKS)):
            current = combo.currentData()
            combo.clear()
            for name in registry.names():
                combo.addItem(name, name)
            combo.setCurrentIndex(max(0, combo.findData(current)))
            kept = kept and (current is None or combo.currentData() == current)
        return kept

    def _on_plugins_changed(self, *_: object) -> None:
        if not self._fill_names():
            self._set_method(self.method.currentData(), {})
            self._set_network(self._default_network(), {})

    def _default_network(self) -> str:
        kind = getattr(self.state.dataset, "kind", "points")
        for name in NETWORKS.names():
            if kind in (NETWORKS.entry(name).meta.get("kind"), NETWORKS.entry(name).meta.get("data")):
                return name
        return NETWORKS.names()[0]

    def schedule_from_app(self) -> bool:
        """The ``[schedule]`` shown is the one "Use for training" chose (or none was)."""
        chosen = self.state.training_schedule
        if chosen is None:
            return not self.schedule
        try:
            return schedule_section(chosen) == self.schedule
        except ConfigError:
            return not self.schedule

    def _override_note(self, what: str) -> str:
        return (f"<br><b style='color:#8a4b00'>from {self.origin}: it overrides {what}</b>"
                if self.origin else "")

    def _show_data(self) -> None:
        if not self.data:
            self.data_label.setText("load data in the Data panel")
            return
        text = describe(self.data, "source")
        if self.data != dict(self.state.data_options):
            panel = describe(self.state.data_options, "source") if self.state.data_options else "none"
            text += self._override_note(f"the Data panel's data ({panel}); load data there to train on it")
        self.data_label.setText(text)

    def _show_schedule(self) -> None:
        if self.schedule_error:
            text = f"<span style='color:#8a1f11'>{self.schedule_error}</span><br>using the method's default"
        elif self.schedule:
            text = describe(self.schedule, "family")
            if not self.schedule_from_app():
                text += self._override_note("the schedule chosen with 'Use for training'; press it again to train on that")
        else:
            text = f"{default_schedule(self.method.currentData() or 'ddpm')} (the method's default)"
        self.schedule_label.setText(text)

    # --- editors -------------------------------------------------------------------------------
    def _changed(self, *_: Any) -> None:
        self.edited.emit()

    def _on_method_chosen(self, index: int) -> None:
        self._set_method(self.method.itemData(index), {})
        self._show_schedule()
        self._changed()

    def _on_network_chosen(self, index: int) -> None:
        self._set_network(self.network.itemData(index), {})
        self._changed()

    def _set_method(self, name: str, values: dict[str, Any]) -> None:
        self.method.setCurrentIndex(max(0, self.method.findData(name)))
        self.method_form.build(METHODS.get(name), values, hidden=HIDDEN_METHOD)
        self._method_hidden = {k: v for k, v in values.items() if k in HIDDEN_METHOD}

    def _set_network(self, kind: str, values: dict[str, Any]) -> None:
        self.network.setCurrentIndex(max(0, self.network.findData(kind)))
        self.network_form.build(NETWORKS.get(kind), values, hidden=("data_shape",))

    def _set_train(self, values: dict[str, Any]) -> None:
        for key, w in self.fields.items():
            value = values.get(key, DEFAULT_TRAIN[key])
            w.blockSignals(True)
            if isinstance(w, QSpinBox):
                w.setValue(int(value))
            else:
                w.setText(f"{float(value):g}")
            w.blockSignals(False)
        device = values.get("device", "auto")
        if device in ("cpu", "cuda") and self.device.findData(device) >= 0:
            self.device.setCurrentIndex(self.device.findData(device))

    def mark_invalid(self, key: str | None) -> None:
        """Outline the editor of ``[train] key`` in red (None clears)."""
        for name, w in self.fields.items():
            w.setStyleSheet("border: 2px solid #d33;" if name == key else "")

    # --- the config ------------------------------------------------------------------------------
    def sections(self) -> dict[str, dict[str, Any]]:
        """The form as raw config sections (unchecked; ``config()`` checks them)."""
        def read(form: ParameterForm, section: str) -> dict[str, Any]:
            try:
                return form.values()
            except StudioError as e:  # the form's message says "schedule parameter"
                raise ConfigError(f"[{section}] {str(e).replace('schedule parameter ', '')}") from None

        train: dict[str, Any] = dict(self.extra["train"])
        for key, w in self.fields.items():
            if isinstance(w, QSpinBox):
                train[key] = w.value()
            else:
                text = w.text().strip()
                try:
                    train[key] = float(text)
                except ValueError:
                    raise ConfigError(f"[train] {key} = {text!r}: expected a number") from None
        train["device"] = self.device.currentData()
        if self.tensorboard.isChecked():
            train["tensorboard"] = True
        out = {
            "data": dict(self.data),
            "schedule": dict(self.schedule),
            "method": {"name": self.method.currentData(), **self._method_hidden, **read(self.method_form, "method")},
            "network": {"kind": self.network.currentData(), **read(self.network_form, "network")},
            "train": train,
            "sample": dict(self.extra["sample"]),
        }
        return {k: v for k, v in out.items() if v}

    def config(self) -> Config:
        """The checked config; a ``ConfigError`` names ``[section] key`` and the value."""
        if not self.data:
            raise ConfigError("[data] no data: load a data set in the Data panel or choose a preset")
        cfg = parse_config(self.sections())
        self.check_method(cfg)
        return cfg

    @staticmethod
    def check_method(cfg: Config) -> None:
        """Method and schedule must fit (NCSN needs a variance-exploding schedule ...):
        building the method is cheap, so a mismatch is reported before any thread starts."""
        name = cfg.method.get("name", "ddpm")
        family = cfg.schedule.get("family", default_schedule(name))
        schedule = schedule_from_section(cfg.schedule, name)
        try:
            METHODS.get(name)(schedule, **{k: v for k, v in cfg.method.items() if k != "name"})
        except (StudioError, TypeError, ValueError) as e:
            raise ConfigError(f"[method] name = {name!r} with [schedule] family = {family!r}: {e}") from None

    def set_config(self, cfg: Config) -> None:
        """Show ``cfg`` (a preset, a TOML file, an opened run); its data and schedule too."""
        self.data = dict(cfg.data)
        self.schedule, self.schedule_error = dict(cfg.schedule), ""
        name = cfg.method.get("name", "ddpm")
        self._set_method(name, {k: v for k, v in cfg.method.items() if k != "name"})
        kind = cfg.network.get("kind") or self._default_network()
        self._set_network(kind, {k: v for k, v in cfg.network.items() if k != "kind"})
        self._set_train(cfg.train)
        self.tensorboard.setChecked(bool(cfg.train.get("tensorboard", False)))
        self.extra = {
            "train": {k: v for k, v in cfg.train.items() if k not in TRAIN_FIELDS and k not in ("device", "tensorboard")},
            "sample": dict(cfg.sample),
        }
        self._show_data()
        self._show_schedule()
        self.mark_invalid(None)
        self._changed()

    def load_preset(self, name: str) -> None:
        self.load_toml(presets()[name], origin=f"preset {name!r}")
        self.preset.setCurrentIndex(max(0, self.preset.findText(name)))

    def load_toml(self, path: str | Path, origin: str | None = None) -> Config:
        """Read and show a TOML config; a ``ConfigError`` names the file and key."""
        cfg = load_config(path)
        build_method(cfg)  # its schedule and method checked now (beta >= 1, a rising log-SNR), not at Start
        self.origin = origin or f"file {Path(path).name!r}"
        self.set_config(cfg)
        return cfg

    def save_toml(self, path: str | Path) -> Path:
        """Write the (checked) config as TOML, atomically."""
        path = Path(path)
        write_text(path, self.config().to_toml())
        return path

    def apply_preset(self, index: int) -> None:
        path = self.preset.itemData(index)
        if path:
            self.load_toml(path, origin=f"preset {self.preset.itemText(index)!r}")

"""A form of editors built from a factory's signature (schedules, also plugin ones) or
from declared option specs (a sampler's ``option_specs()``: name, annotation, default,
help).

Each keyword parameter gets an editor chosen by its annotation and default value: a
combo box for a ``Literal[...]`` annotation (its allowed values), a check box for bool, a
spin box for int, a line edit for float (so 1e-4 reads as typed) and for anything else
(JSON). Parameters in ``hidden`` (e.g. a custom schedule's points,
edited by dragging) get none.
"""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from studio.core.errors import StudioError


def signature_defaults(factory: Callable) -> dict[str, Any]:
    """Keyword parameters of ``factory`` and their defaults (inspect.Parameter.empty if none)."""
    out = {}
    for name, p in inspect.signature(factory).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[name] = p.default
    return out


def literal_choices(factory: Callable) -> dict[str, tuple]:
    """Parameters annotated ``Literal[...]`` and their allowed values."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # a plugin's annotation that does not resolve: plain editors then
        return {}
    return {k: typing.get_args(v) for k, v in hints.items() if typing.get_origin(v) is typing.Literal}


def spec_kind(annotation: Any) -> tuple[type, tuple | None, bool]:
    """(kind, allowed values of a Literal or None, None allowed) of an option annotation
    such as ``int``, ``float | None`` or ``Literal["posterior", "beta"]``."""
    if typing.get_origin(annotation) is typing.Literal:
        return str, typing.get_args(annotation), False
    args = typing.get_args(annotation)
    if args and type(None) in args:  # X | None
        rest = [a for a in args if a is not type(None)]
        kind, choices, _ = spec_kind(rest[0]) if len(rest) == 1 else (str, None, True)
        return kind, choices, True
    return (annotation if isinstance(annotation, type) else str), None, False


class ParameterForm(QWidget):
    """``values()`` reads the editors (raising a ``StudioError`` naming a bad one);
    ``edited`` fires on every change the user makes."""

    edited = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self._kinds: dict[str, type] = {}
        self._optional: set[str] = set()
        self.defaults: dict[str, Any] = {}

    def build(self, factory: Callable, values: dict[str, Any], hidden: tuple[str, ...] = ()) -> None:
        choices = literal_choices(factory)
        rows = []
        for name, default in signature_defaults(factory).items():
            if name in hidden:
                continue
            value = values.get(name, None if default is inspect.Parameter.empty else default)
            kind = type(default) if default not in (inspect.Parameter.empty, None) else type(value)
            tip = f"{name} (default {default!r})" if default is not inspect.Parameter.empty else name
            rows.append((name, kind, choices.get(name), False, default, value, tip))
        self._build_rows(rows)

    def build_specs(self, specs: dict[str, Any], values: dict[str, Any], hidden: tuple[str, ...] = ()) -> None:
        """Editors for declared options (``OptionSpec(name, annotation, default, help)``)."""
        rows = []
        for name, spec in specs.items():
            if name in hidden:
                continue
            kind, choices, optional = spec_kind(spec.annotation)
            tip = f"{spec.help} (default {spec.default!r})" if spec.help else f"{name} (default {spec.default!r})"
            rows.append((name, kind, choices, optional, spec.default, values.get(name, spec.default), tip))
        self._build_rows(rows)

    def _build_rows(self, rows: list[tuple]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self._kinds.clear()
        self._optional.clear()
        self.defaults.clear()
        for name, kind, choices, optional, default, value, tip in rows:
            editor = self._choice_editor(choices, value) if choices else self._editor(kind, value)
            editor.setObjectName(name)
            editor.setToolTip(tip)
            self.editors[name] = editor
            self._kinds[name] = kind
            self.defaults[name] = default
            if optional:
                self._optional.add(name)
            self.form.addRow(name, editor)

    def _choice_editor(self, allowed: tuple, value: Any) -> QComboBox:
        w = QComboBox()
        for option in allowed:
            w.addItem(str(option), option)
        w.setCurrentIndex(max(0, w.findData(value)))
        w.setEnabled(len(allowed) > 1)  # a single allowed value is shown, not offered
        w.currentIndexChanged.connect(self._on_changed)
        return w

    def _editor(self, kind: type, value: Any) -> QWidget:
        if kind is bool:
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(self._on_changed)
        elif kind is int:
            w = QSpinBox()
            w.setRange(1, 100_000)
            w.setValue(int(value))
            w.setKeyboardTracking(False)  # typing "1000" is one change, not four
            w.valueChanged.connect(self._on_changed)
        else:
            w = QLineEdit("" if value is None else (f"{value:g}" if kind is float else json.dumps(value)))
            w.textEdited.connect(self._on_changed)
        return w

    def _on_changed(self, *_) -> None:  # editors' signals carry their value; edited does not
        self.edited.emit()

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` without firing ``edited`` (e.g. after loading a schedule)."""
        for name, value in values.items():
            w = self.editors.get(name)
            if w is None:
                continue
            w.blockSignals(True)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QSpinBox):
                w.setValue(int(value))
            elif isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            else:
                w.setText(f"{value:g}" if isinstance(value, float) else json.dumps(value))
            w.blockSignals(False)

    def values(self) -> dict[str, Any]:
        out = {}
        for name, w in self.editors.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QSpinBox):
                out[name] = w.value()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData()
            else:
                out[name] = self._parse(name, w.text())
        return out

    def _parse(self, name: str, text: str) -> Any:
        text = text.strip()
        if not text and name in self._optional:
            return None
        try:
            return float(text) if self._kinds[name] is float else json.loads(text)
        except ValueError:
            raise StudioError(f"schedule parameter {name} = {text!r} is not a number") from None

    def mark_invalid(self, name: str | None) -> None:
        """Outline the editor of parameter ``name`` in red (None clears every mark)."""
        for key, w in self.editors.items():
            w.setStyleSheet("border: 2px solid #d33;" if key == name else "")

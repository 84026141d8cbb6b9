"""The app's shared state: a plain model with psygnal events and no Qt (napari style).

Panels take the state in ``__init__``, read it, change it through its methods and
subscribe to its events; they never talk to each other directly. So the training
panel reads ``state.training_schedule`` and ``state.dataset`` and listens to
``training_schedule_changed`` / ``dataset_changed``; the viewer reads ``state.run_dir``.

Events (all psygnal ``Signal``s, connect with ``state.<event>.connect(callback)``):

* ``dataset_changed(dataset)``: a new :class:`~studio.core.data.Dataset` (or None);
  ``state.data_options`` holds the ``[data]`` config section that rebuilds it.
* ``schedules_changed()``: an entry of ``state.schedules`` was added, removed or renamed.
* ``schedule_edited(index)``: entry ``index`` got a new schedule (parameters, dragging).
* ``training_schedule_changed(schedule)``: "use for training" picked a schedule.
* ``run_dir_changed(path)``: the run the viewer and monitor look at (``Path`` or None);
  "Open run" anywhere sets it, and a training session sets it on its job's ``Started``.
* ``checkpoint_offered(path)``: a new checkpoint of ``run_dir`` landed (a job's
  ``CheckpointSaved``, or a followed run's new file); ``state.checkpoint`` holds it.
* ``plugins_changed(report)``: plugins were (re)loaded; panels that list registry
  names (schedule families, data sources) refill their lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psygnal import Signal

from studio.plugins import PluginReport, load_plugins, unload_plugins

if TYPE_CHECKING:  # no torch here: the app builds its window around an AppState before torch loads
    from studio.core.schedules import Schedule

# distinct, colour-blind friendly (Okabe-Ito), cycled for overlaid schedules
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")


@dataclass
class ScheduleEntry:
    """One schedule of the editor's list: its label, the schedule and its plot colour."""

    name: str
    schedule: Schedule
    color: str


class AppState:
    dataset_changed = Signal(object)
    schedules_changed = Signal()
    schedule_edited = Signal(int)
    training_schedule_changed = Signal(object)
    run_dir_changed = Signal(object)
    checkpoint_offered = Signal(object)
    plugins_changed = Signal(object)

    def __init__(self) -> None:
        self.dataset = None  # studio.core.data.Dataset | None
        self.data_options: dict[str, Any] = {}
        self.schedules: list[ScheduleEntry] = []
        self.training_schedule: Schedule | None = None
        self.run_dir: Path | None = None
        self.checkpoint: Path | None = None  # the newest checkpoint of run_dir offered
        self.plugins_folder: Path | None = None
        self._colors_used = 0

    # --- data ----------------------------------------------------------------------
    def set_dataset(self, dataset: Any, options: dict[str, Any] | None = None) -> None:
        """Make ``dataset`` current; ``options`` is the ``[data]`` section that rebuilds it."""
        self.dataset = dataset
        self.data_options = dict(options or {})
        self.dataset_changed.emit(dataset)

    # --- schedules -----------------------------------------------------------------
    def add_schedule(self, name: str, schedule: Schedule) -> int:
        color = PALETTE[self._colors_used % len(PALETTE)]
        self._colors_used += 1
        self.schedules.append(ScheduleEntry(self.unique_name(name), schedule, color))
        self.schedules_changed.emit()
        return len(self.schedules) - 1

    def remove_schedule(self, index: int) -> None:
        removed = self.schedules.pop(index)
        if removed.schedule is self.training_schedule:
            self.training_schedule = None
            self.training_schedule_changed.emit(None)
        self.schedules_changed.emit()

    def rename_schedule(self, index: int, name: str) -> None:
        name = name.strip()
        if name and name != self.schedules[index].name:
            self.schedules[index].name = self.unique_name(name)
            self.schedules_changed.emit()

    def set_schedule(self, index: int, schedule: Schedule) -> None:
        """Replace entry ``index``'s schedule (a parameter changed, a point was dragged)."""
        entry = self.schedules[index]
        was_training = entry.schedule is self.training_schedule
        entry.schedule = schedule
        self.schedule_edited.emit(index)
        if was_training:  # the training panel follows edits of the schedule it uses
            self.use_for_training(index)

    def use_for_training(self, index: int) -> None:
        self.training_schedule = self.schedules[index].schedule
        self.training_schedule_changed.emit(self.training_schedule)

    def unique_name(self, name: str) -> str:
        taken = {e.name for e in self.schedules}
        if name not in taken:
            return name
        k = 2
        while f"{name} ({k})" in taken:
            k += 1
        return f"{name} ({k})"

    # --- runs ----------------------------------------------------------------------
    def set_run_dir(self, path: str | Path | None) -> None:
        self.run_dir = None if path is None else Path(path)
        self.checkpoint = None
        self.run_dir_changed.emit(self.run_dir)

    def offer_checkpoint(self, path: str | Path) -> None:
        """A new checkpoint of the current run: the viewer offers it (only checkpoints of
        ``run_dir`` are offered; another run's are ignored)."""
        path = Path(path)
        if self.run_dir is None or path.resolve().parent.parent != self.run_dir.resolve():
            return
        self.checkpoint = path
        self.checkpoint_offered.emit(path)

    # --- plugins -------------------------------------------------------------------
    def load_plugins(self, folder: str | Path | None = None) -> PluginReport:
        """Installed entry points plus the one plugins folder the user chose (nothing
        else is ever imported). Choosing another folder takes the old one's
        contributions out of the registries first."""
        folder = Path(folder).expanduser() if folder else None
        if folder != self.plugins_folder:
            unload_plugins()
        report = load_plugins(folder)
        self.plugins_folder = folder
        self.plugins_changed.emit(report)
        return report

"""The session layer: the studio's model between the engine and the GUI, without Qt.

``AppState`` (the shared choices: data, schedules, the run on screen and its newest
checkpoint), ``TrainingSession`` (a training job or a followed run), ``SamplingSession``
(the run the viewer samples, its checkpoints, sampling and branch jobs), ``RunWatch``
(read-only following of a run directory) and ``JobDriver`` (one job's lifecycle). Every
event is a psygnal ``Signal``; the owner drives them with ``poll()`` (the app from
QTimers, tests and scripts in a loop). Panels are views over these (napari's
``components``): they take a session and subscribe.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .state import PALETTE, AppState, ScheduleEntry  # no torch: the app builds its window around it first

# the rest imports torch (seconds on a small machine): loaded on first use, so the window
# is on screen before it (PEP 562 module __getattr__)
_LAZY = {
    "RunWatch": ".follow", "JobDriver": ".jobs", "SamplingSession": ".sampling", "branch_steps": ".sampling",
    "TrainingSession": ".training", "default_runs_root": ".training", "default_threads": ".training",
    "new_run_dir": ".training",
}

if TYPE_CHECKING:
    from .follow import RunWatch
    from .jobs import JobDriver
    from .sampling import SamplingSession, branch_steps
    from .training import TrainingSession, default_runs_root, default_threads, new_run_dir


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AppState", "ScheduleEntry", "PALETTE", "JobDriver", "RunWatch",
    "TrainingSession", "SamplingSession", "branch_steps", "default_runs_root", "default_threads", "new_run_dir",
]

"""The session layer: the studio's model between the engine and the GUI, without Qt.

``AppState`` (the shared choices: data, schedules, the run on screen and its newest
checkpoint), ``TrainingSession`` (a training job or a followed run), ``SamplingSession``
(the run the viewer samples, its checkpoints, sampling and branch jobs), ``RunWatch``
(read-only following of a run directory) and ``JobDriver`` (one job's lifecycle). Every
event is a psygnal ``Signal``; the owner drives them with ``poll()`` (the app from
QTimers, tests and scripts in a loop). Panels are views over these (napari's
``components``): they take a session and subscribe.
"""

from .follow import RunWatch
from .jobs import JobDriver
from .sampling import SamplingSession, branch_steps
from .state import PALETTE, AppState, ScheduleEntry
from .training import TrainingSession, default_runs_root, default_threads, new_run_dir

__all__ = [
    "AppState", "ScheduleEntry", "PALETTE", "JobDriver", "RunWatch",
    "TrainingSession", "SamplingSession", "branch_steps", "default_runs_root", "default_threads", "new_run_dir",
]

"""Run an engine job on a worker thread and hand its events to the GUI thread.

The job is a plain generator of ``studio.engine.events`` (superqt's GeneratorWorker idea):
:class:`studio.engine.runner.ThreadRunner` drives it on a daemon thread and queues the
events; a QTimer on the GUI thread drains the queue and emits them in one batch per tick.
No signal ever crosses threads (PITFALLS.md: a slot connected to a worker-owned object
runs in the worker), and a training loop yielding thousands of events a second costs the
GUI one emit per tick. Pause, resume and cancel call the thread-safe ``JobControl``
directly, so they act between two steps even while the worker is busy.
"""

from __future__ import annotations

from typing import Callable, Iterator

from PySide6.QtCore import QObject, QTimer, Signal

from studio.engine.control import JobControl
from studio.engine.events import Failed, Finished
from studio.engine.runner import ThreadRunner


class JobBridge(QObject):
    """One job at a time. ``events(list)`` carries every event in order, batched per
    tick; ``ended(object)`` carries the job's last event (``Finished`` or ``Failed``) once
    the worker thread is done, so a slot may start the next job right away."""

    events = Signal(list)
    started = Signal()
    ended = Signal(object)
    paused_changed = Signal(bool)

    def __init__(self, interval_ms: int = 50, max_batch: int = 2000, parent: QObject | None = None):
        super().__init__(parent)
        self.max_batch = max_batch  # bounds the work of one tick if the worker races ahead
        self.runner: ThreadRunner | None = None
        self.control: JobControl | None = None
        self.last_event = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)

    # -- control -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner is not None

    @property
    def paused(self) -> bool:
        return self.control is not None and self.control.paused

    def start(self, job_factory: Callable[[JobControl], Iterator], name: str = "studio-job") -> JobControl:
        """Build the job with a fresh control (``job_factory(control)``) and start it.
        The factory runs here, on the GUI thread, so bad input raises to the caller
        before any thread starts."""
        if self.running:
            raise RuntimeError("a job is already running; stop it first")
        control = JobControl()
        job = job_factory(control)
        self.control, self.last_event = control, None
        self.runner = ThreadRunner(job, name=name)
        self._timer.start()
        self.started.emit()
        return control

    def pause(self) -> None:
        if self.control is not None and not self.control.paused:
            self.control.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.control is not None and self.control.paused:
            self.control.resume()
            self.paused_changed.emit(False)

    def cancel(self) -> None:
        if self.control is not None:
            was_paused = self.control.paused
            self.control.cancel()  # also wakes a paused job so that it can save and end
            if was_paused:
                self.paused_changed.emit(False)

    def stop_and_wait(self, timeout: float | None = None) -> bool:
        """Cancel, wait for the worker to end (the job saves what it must on cancel),
        and deliver its remaining events. True when the worker ended in time."""
        runner = self.runner
        if runner is None:
            return True
        self.cancel()
        runner.join(timeout)
        self.poll()
        return not runner.alive

    # -- GUI-thread side ---------------------------------------------------------------
    def poll(self) -> None:
        """Drain the queue (called by the timer; tests may call it directly)."""
        runner = self.runner
        if runner is None:
            return
        alive = runner.alive  # read before draining, so no event queued after is missed
        batch = runner.drain(self.max_batch)
        if batch:
            for event in reversed(batch):
                if isinstance(event, (Finished, Failed)):
                    self.last_event = event
                    break
            self.events.emit(batch)
        if not alive and runner.events.empty():
            self._timer.stop()
            self.runner, self.control = None, None
            last = self.last_event
            if last is None:  # a job that ended without saying how
                last = Failed("the job ended without a result")
            self.ended.emit(last)

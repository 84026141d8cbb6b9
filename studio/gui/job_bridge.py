"""Drive a session's ``JobDriver`` from the GUI thread and re-emit its events as Qt signals.

The job lifecycle lives in the Qt-free session layer (``studio.session.jobs.JobDriver``);
this bridge only adds the clock: a QTimer on the GUI thread calls ``driver.poll()``,
which drains the worker's queue and emits one batch per tick. No signal ever crosses
threads (docs/PITFALLS.md: a slot connected to a worker-owned object runs in the worker), and
a training loop yielding thousands of events a second costs the GUI one emit per tick.
"""

from __future__ import annotations

from typing import Callable, Iterator

from PySide6.QtCore import QObject, QTimer, Signal

from studio.engine.control import JobControl
from studio.session.jobs import JobDriver


class JobBridge(QObject):
    """One job at a time. ``events(list)`` carries every event in order, batched per
    tick; ``ended(object)`` carries the job's last event (``Finished`` or ``Failed``) once
    the worker thread is done, so a slot may start the next job right away."""

    events = Signal(list)
    started = Signal()
    ended = Signal(object)
    paused_changed = Signal(bool)

    def __init__(self, interval_ms: int = 50, max_batch: int = 2000, parent: QObject | None = None,
                 driver: JobDriver | None = None):
        super().__init__(parent)
        self.driver = driver or JobDriver(max_batch=max_batch)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self.driver.started.connect(self._on_started)
        self.driver.events.connect(self.events.emit)
        self.driver.ended.connect(self._on_ended)
        self.driver.paused_changed.connect(self.paused_changed.emit)

    @property
    def running(self) -> bool:
        return self.driver.running

    @property
    def paused(self) -> bool:
        return self.driver.paused

    @property
    def control(self) -> JobControl | None:
        return self.driver.control

    @property
    def runner(self):
        return self.driver.runner

    @property
    def last_event(self):
        return self.driver.last_event

    def start(self, job_factory: Callable[[JobControl], Iterator], name: str = "studio-job") -> JobControl:
        """Build the job (``job_factory(control)``, here on the GUI thread: bad input
        raises to the caller before any thread starts) and start it."""
        return self.driver.start(job_factory, name=name)

    def pause(self) -> None:
        self.driver.pause()

    def resume(self) -> None:
        self.driver.resume()

    def cancel(self) -> None:
        self.driver.cancel()

    def stop_and_wait(self, timeout: float | None = None) -> bool:
        return self.driver.stop_and_wait(timeout)

    def poll(self) -> None:
        """Drain the queue (called by the timer; tests may call it directly)."""
        self.driver.poll()

    def _on_started(self) -> None:
        self._timer.start()
        self.started.emit()

    def _on_ended(self, last) -> None:
        self._timer.stop()
        self.ended.emit(last)

"""Drive one engine job at a time without Qt: the job lifecycle every session shares.

``JobDriver.start(factory)`` calls ``factory(control)`` on the caller's thread (so a bad
input raises to the caller before any thread starts: the engine's job factories check
their input at the call), drives the generator with a ``ThreadRunner`` and, each time the
owner calls ``poll()`` (the app from a QTimer, a test or script in a loop), emits the
events queued so far in one batch. Pause, resume and cancel call the thread-safe
``JobControl`` directly, so they act between two steps even while the worker is busy.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

from psygnal import Signal

from studio.engine.control import JobControl
from studio.engine.events import Failed, Finished
from studio.engine.runner import ThreadRunner


class JobDriver:
    """Signals: ``started()``, ``events(list)`` (every event in order, one batch per
    poll), ``ended(last)`` (``Finished`` or ``Failed`` once the worker thread is done, so
    a slot may start the next job), ``paused_changed(bool)``."""

    started = Signal()
    events = Signal(list)
    ended = Signal(object)
    paused_changed = Signal(bool)

    def __init__(self, max_batch: int = 2000):
        self.max_batch = max_batch  # bounds the work of one poll if the worker races ahead
        self.runner: ThreadRunner | None = None
        self.control: JobControl | None = None
        self.last_event = None

    @property
    def running(self) -> bool:
        return self.runner is not None

    @property
    def paused(self) -> bool:
        return self.control is not None and self.control.paused

    def start(self, job_factory: Callable[[JobControl], Iterator], name: str = "studio-job") -> JobControl:
        if self.running:
            raise RuntimeError("a job is already running; stop it first")
        control = JobControl()
        job = job_factory(control)
        self.control, self.last_event = control, None
        self.runner = ThreadRunner(job, name=name)
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
        """Cancel, wait for the worker to end (the job saves what it must on cancel) and
        deliver its remaining events. True when the worker ended in time."""
        runner = self.runner
        if runner is None:
            return True
        self.cancel()
        runner.join(timeout)
        self.poll()
        return not runner.alive

    def poll(self) -> None:
        """Emit what the worker queued since the last call; ``ended`` once it is done."""
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
            self.runner, self.control = None, None
            last = self.last_event
            if last is None:  # a job that ended without saying how
                last = Failed("the job ended without a result")
            self.ended.emit(last)

    def wait(self, timeout: float) -> bool:
        """Poll until the job ended (headless use: tests, scripts). True if it did."""
        return poll_until(self.poll, lambda: not self.running, timeout)


def poll_until(poll: Callable[[], None], done: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Call ``poll`` until ``done()`` or ``timeout`` seconds passed; the last ``done()``."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        poll()
        time.sleep(interval)
    poll()
    return done()

"""Drive a job generator on a daemon thread and hand its events over a queue.

The GUI polls :meth:`ThreadRunner.drain` from a timer (never blocks); the CLI iterates
the generator itself. An exception escaping the job becomes a ``Failed`` event, so the
consumer always sees how a job ended.
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import Any, Iterator

from .events import Failed


class ThreadRunner:
    def __init__(self, job: Iterator[Any], name: str = "studio-job", start: bool = True):
        self.job = job
        self.events: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.job:
                self.events.put(event)
        except BaseException as exc:  # the consumer must learn how the job ended
            self.error = exc
            message = str(exc) or type(exc).__name__
            self.events.put(Failed(f"{type(exc).__name__}: {message}" if not _is_user_error(exc) else message))
            traceback.print_exc()

    def drain(self, max_items: int | None = None) -> list[Any]:
        """Events queued so far (at most ``max_items``), without blocking."""
        out: list[Any] = []
        while max_items is None or len(out) < max_items:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def _is_user_error(exc: BaseException) -> bool:
    from ..core.errors import StudioError

    return isinstance(exc, StudioError)

"""Pause, resume and cancel a running job from any thread.

The GUI calls these methods directly (not through a queued Qt slot: a busy worker's
event loop never runs one, docs/PITFALLS.md); the job calls :meth:`JobControl.checkpoint`
between steps.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside a job by :meth:`JobControl.checkpoint` after :meth:`JobControl.cancel`."""


class JobControl:
    def __init__(self) -> None:
        self._running = threading.Event()  # set = not paused
        self._running.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wake a paused job so that it sees the cancel

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise :class:`Cancelled` once cancelled."""
        if not self._running.is_set():
            self._running.wait()
        if self._cancelled.is_set():
            raise Cancelled()

"""A text progress bar with rate and ETA for the CLI, on stderr.

On a terminal it redraws one line (at most 10 times a second); otherwise (a log file,
a test's pipe) it prints a line every 10 % so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class ProgressBar:
    def __init__(self, total: int, label: str = "", start: int = 0, stream: TextIO | None = None, width: int = 28):
        self.total, self.label, self.width = max(1, int(total)), label, width
        self.start = self.done = int(start)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = self._last = time.perf_counter()
        self._last_decile = -1

    def update(self, done: int, extra: str = "") -> None:
        self.done = int(done)
        now = time.perf_counter()
        finished = self.done >= self.total
        if self.tty:
            if not finished and now - self._last < 0.1:
                return
        else:
            decile = int(10 * self.done / self.total)
            if decile == self._last_decile and not finished:
                return
            self._last_decile = decile
        self._last = now
        rate = (self.done - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        frac = self.done / self.total
        bar = "#" * int(frac * self.width)
        line = (
            f"{self.label} [{bar:<{self.width}}] {self.done}/{self.total} {100 * frac:3.0f}% "
            f"{rate:.1f} it/s ETA {format_seconds(eta)} {extra}"
        ).rstrip()
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

"""One writer per run directory, and whether a run's writer is still alive.

Two processes training into one run (the CLI and the app, two apps) would overwrite
each other's checkpoints and metrics. The writer therefore holds an exclusive
``fcntl.flock`` on ``RUN/writer.lock`` while it writes (train or resume): the kernel
drops the lock when the process dies, however it dies, so a lock of a killed process is
never stale on this machine; the file keeps the last holder's host and pid only to name
them in messages. A second writer is refused with :class:`RunLocked` naming the run and
the holder, and may follow the run read-only.

A lock says nothing across machines (a cluster folder mounted here, where flock may not
reach the other host and a pid means nothing), so the writer also keeps a heartbeat in
``status.json``: a thread rewrites the status every ``HEARTBEAT_S`` seconds with the
time of that write (host and pid are already there). :func:`run_liveness` judges a
``running`` status from another host stale after ``STALE_AFTER_S`` seconds without a
beat; on this host it asks the lock itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ..core.errors import StudioError

LOCK_NAME = "writer.lock"
HEARTBEAT_S = 5.0  # the writer refreshes status.json this often
STALE_AFTER_S = 30.0  # a running status without a beat for this long has lost its writer
LIVENESS = ("running", "stopped", "finished", "failed", "cancelled", "unknown")


class RunLocked(StudioError):
    """Another process is writing this run."""


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _pid_alive(pid: Any) -> bool:
    import psutil

    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError, TypeError):
        return False


def _lock_held(run_dir: Path) -> bool | None:
    """Whether some process holds the run's lock (None: the run has no lock file, an
    older run or one never written here)."""
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock if we got it
    return False


def _holder_words(info: dict[str, Any], now: float | None = None) -> str:
    pid, host = info.get("pid", "?"), info.get("host", "?")
    words = f"pid {pid} on host {host}"
    if isinstance(info.get("time"), (int, float)):
        words += f", last heartbeat {max(0.0, (now or time.time()) - info['time']):.0f} s ago"
    return words


def _refusal(run_dir: Path, info: dict[str, Any]) -> RunLocked:
    return RunLocked(
        f"run {run_dir} is being written by another process ({_holder_words(info)}); a run has one "
        f"writer at a time: follow it read-only (the app's Open run), or resume it once that process has ended"
    )


def _foreign_writer(run_dir: Path, stale_after: float) -> dict[str, Any] | None:
    """The status of a live writer that does not hold our kind of lock: a running status
    from another host with a fresh heartbeat, or from this host by a live pid other than
    ours (a writer that predates the lock)."""
    status = _read_json(run_dir / "status.json")
    if status.get("state") != "running":
        return None
    fresh = isinstance(status.get("time"), (int, float)) and time.time() - status["time"] < stale_after
    host = status.get("host")
    if host is not None and host != socket.gethostname():
        return status if fresh else None
    pid = status.get("pid")
    if pid is not None and int(pid) != os.getpid() and fresh and _pid_alive(pid):
        return status
    return None


def check_writable(run_dir: str | Path, stale_after: float = STALE_AFTER_S) -> None:
    """Raise :class:`RunLocked` if another process is writing ``run_dir``; writes nothing
    (the trainer calls it while checking its inputs, before the run starts)."""
    run_dir = Path(run_dir)
    if _lock_held(run_dir):
        raise _refusal(run_dir, _read_json(lock_path(run_dir)))
    foreign = _foreign_writer(run_dir, stale_after)
    if foreign is not None:
        raise _refusal(run_dir, foreign)


def sweep_temporaries(run_dir: Path) -> list[Path]:
    """Remove the temporary files (engine.atomic: ``.NAME.*.tmp.SUFFIX``) a killed writer
    left in the run's own folders; only the lock holder writes there, so none is in use.
    Never a checkpoint, a preview or anything under samples/ (another process's)."""
    removed = []
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "previews"):
        for path in folder.glob(".*.tmp.*") if folder.is_dir() else ():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


class RunLock:
    """The exclusive right to write one run directory, with the status heartbeat.

    ``acquire()`` creates the folder, takes the lock (or raises :class:`RunLocked`),
    records this host and pid in the lock file and starts the heartbeat thread, which
    calls ``run.beat()`` (``engine.runs.RunDir``: rewrite the last status written, with
    the time now, while it says running). ``release()`` stops the thread and drops the
    lock; it is also a context manager. ``stale_holder`` names the previous holder when
    the lock file was left by a process that had died (its lock went with it).
    """

    def __init__(self, run: Any, heartbeat_s: float = HEARTBEAT_S, stale_after: float = STALE_AFTER_S):
        self.run = run
        self.path = Path(run.path)
        self.heartbeat_s, self.stale_after = heartbeat_s, stale_after
        self.stale_holder: dict[str, Any] | None = None
        self.swept: list[Path] = []  # temporary files of a killed writer, removed on acquire
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = 0.0

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refusal(self.path, _read_json(lock_path(self.path))) from None
        previous = _read_json(lock_path(self.path))
        foreign = _foreign_writer(self.path, self.stale_after)
        if foreign is not None:
            os.close(fd)  # drops the lock
            raise _refusal(self.path, foreign)
        if previous.get("pid") not in (None, os.getpid()):
            self.stale_holder = previous  # it held this lock once and died or ended without a word
        self._fd, self._since = fd, time.time()
        self.swept = sweep_temporaries(self.path)
        self._write_holder()
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat_loop, name=f"heartbeat {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def _write_holder(self) -> None:
        """This host and pid into the lock file (in place: the file is the lock)."""
        info = {"host": socket.gethostname(), "pid": os.getpid(), "since": self._since, "time": time.time()}
        data = json.dumps(info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with contextlib.suppress(OSError):  # a full disk or a vanished folder: the next beat tries again
                self.run.beat()
                self._write_holder()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def run_liveness(run_dir: str | Path, stale_after: float = STALE_AFTER_S) -> str:
    """What a run's ``status.json`` means now, for a reader (the app's follower, the CLI):

    - ``finished``, ``failed``, ``cancelled``: the writer ended and said so;
    - ``running``: a writer is at it: on this host it holds the run's lock (or, for a run
      without a lock file, its pid lives); from another host its heartbeat is younger
      than ``stale_after`` seconds;
    - ``stopped``: the status says running but its writer is gone (killed, crashed,
      powered off, its machine unreachable): the run can be resumed from its last
      checkpoint;
    - ``unknown``: no readable status (not a run, or not started yet).
    """
    run_dir = Path(run_dir)
    status = _read_json(run_dir / "status.json")
    state = status.get("state")
    if state in ("finished", "failed", "cancelled"):
        return state
    if state != "running":
        return "unknown"
    host = status.get("host")
    if host is not None and host != socket.gethostname():
        beat = status.get("time")
        fresh = isinstance(beat, (int, float)) and time.time() - beat < stale_after
        return "running" if fresh else "stopped"
    held = _lock_held(run_dir)
    if held is None:  # a run written before the lock existed: the pid is all there is
        return "running" if _pid_alive(status.get("pid")) else "stopped"
    return "running" if held else "stopped"

"""The runs table and the overlays of the Runs panel, without Qt.

``RunsSession`` lists every run under a root folder (and any run opened elsewhere) with
``engine.run_index``, keeps the table live while runs are being written, and reads the
curves of the selected runs for overlays. Every read of the disk happens on one worker
thread (a ``JobDriver`` job: a scan, the curves of a new selection, a live refresh, one
after another), so fifty runs or a slow disk never hold up the owner's thread; the
owner calls ``poll()`` (the app from a QTimer, tests in a loop), which hands over what the
worker read, as psygnal signals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from psygnal import Signal

from studio.engine.control import JobControl
from studio.engine.events import Failed, Finished
from studio.engine.run_index import CurveData, RunCurves, RunSummary, differing_keys, find_runs, is_run_dir, run_label, summarize_run

from .jobs import JobDriver, poll_until


@dataclass(frozen=True)
class CurvesRead:
    """The worker read a run's curves (``data`` is immutable: safe to hand over)."""

    path: Path
    data: CurveData


@dataclass(frozen=True)
class ScanDone:
    """A full scan ended; ``paths`` are the runs it found (the others went away)."""

    paths: tuple[Path, ...]


class RunsSession:
    """Signals: ``listed(list[RunSummary])`` (the whole table, after every change),
    ``selection_changed(list[Path])``, ``curves_changed(list[Path])`` (selected runs
    whose curves were read), ``error(str)``.

    ``summaries`` (path -> RunSummary, scan order), ``selected`` (paths, in selection
    order), ``curves`` (path -> CurveData). Runs still being written are re-read every
    ``live_interval_s``; the root is rescanned for new runs every ``rescan_interval_s``.
    """

    listed = Signal(list)
    selection_changed = Signal(list)
    curves_changed = Signal(list)
    error = Signal(str)

    def __init__(self, root: str | Path | None = None, live_interval_s: float = 1.0, rescan_interval_s: float = 10.0):
        self.root = Path(root).expanduser() if root else None
        self.extra: list[Path] = []
        self.summaries: dict[Path, RunSummary] = {}
        self.selected: list[Path] = []
        self.curves: dict[Path, CurveData] = {}
        self.live_interval_s, self.rescan_interval_s = live_interval_s, rescan_interval_s
        self._readers: dict[Path, RunCurves] = {}  # touched only by the worker's jobs
        self._driver = JobDriver()
        self._driver.events.connect(self._on_events)
        self._driver.ended.connect(self._on_ended)
        self._pending: list[str] = []  # "scan" | "curves" | "live", each at most once
        self._at_live = self._at_scan = -math.inf
        self.scans = 0  # completed scans (tests wait on it)

    # --- what the owner asks for ------------------------------------------------------
    def set_root(self, root: str | Path | None) -> None:
        """List the runs under another folder (the runs opened elsewhere stay)."""
        self.root = Path(root).expanduser() if root else None
        self.refresh()

    def add_run(self, path: str | Path) -> None:
        """A run opened elsewhere (File > Open run, the CLI's ``gui RUN``) joins the table."""
        path = Path(path)
        if path not in self.extra and is_run_dir(path):
            self.extra.append(path)
            self.refresh()

    def refresh(self) -> None:
        """Rescan the root and the opened runs (on the worker)."""
        self._request("scan")

    def select(self, paths: Sequence[str | Path]) -> None:
        """The runs to overlay; their curves are read on the worker."""
        selected = [Path(p) for p in paths]
        if selected == self.selected:
            return
        self.selected = selected
        self.selection_changed.emit(list(selected))
        self._request("curves")

    def differing(self) -> dict[str, list[Any]]:
        """The config keys whose values differ between the selected runs."""
        configs = [self.summaries[p].config for p in self.selected if p in self.summaries]
        return differing_keys(configs) if len(configs) == len(self.selected) else {}

    def label(self, path: Path, keys: Sequence[str] | None = None) -> str:
        """A run's legend entry: the settings in which the selected runs differ."""
        summary = self.summaries.get(path)
        if summary is None:
            return Path(path).name
        keys = list(self.differing()) if keys is None else list(keys)
        return run_label(summary.config, keys, summary.name)

    @property
    def busy(self) -> bool:
        return self._driver.running or bool(self._pending)

    def poll(self) -> None:
        """Hand over what the worker read; start the next read when it is idle."""
        self._driver.poll()
        now = time.monotonic()
        if now - self._at_scan >= self.rescan_interval_s:
            self._request("scan", start=False)
        if now - self._at_live >= self.live_interval_s and any(s.state == "running" for s in self.summaries.values()):
            self._request("live", start=False)
        self._start_next()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Poll until nothing is pending (headless use: tests, scripts)."""
        return poll_until(self.poll, lambda: not self.busy, timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._pending.clear()
        self._driver.stop_and_wait(timeout)

    # --- the worker's jobs ----------------------------------------------------------------
    def _request(self, kind: str, start: bool = True) -> None:
        if kind not in self._pending:
            self._pending.append(kind)
        if start:
            self._start_next()

    def _start_next(self) -> None:
        if self._driver.running or not self._pending:
            return
        kind = self._pending.pop(0)
        now = time.monotonic()
        if kind == "scan":
            self._at_scan = now
            root, extra = self.root, list(self.extra)
            self._driver.start(lambda control: scan_job(root, extra, control), name="studio-runs-scan")
        elif kind == "curves":
            paths = [p for p in self.selected if p not in self.curves]
            self._driver.start(lambda control: curves_job(paths, self._readers, control), name="studio-runs-curves")
        else:
            self._at_live = now
            running = [p for p, s in self.summaries.items() if s.state == "running"]
            names = {p: self.summaries[p].name for p in running}
            paths = list(self.selected)
            self._driver.start(lambda control: live_job(running, names, paths, self._readers, control), name="studio-runs-live")

    def _on_events(self, batch: list) -> None:
        listed, curves = False, []
        for event in batch:
            if isinstance(event, RunSummary):
                self.summaries[event.path] = event
                listed = True
            elif isinstance(event, CurvesRead):
                self.curves[event.path] = event.data
                curves.append(event.path)
            elif isinstance(event, ScanDone):
                gone = [p for p in self.summaries if p not in event.paths]
                for p in gone:
                    del self.summaries[p]
                    self.curves.pop(p, None)
                listed = listed or bool(gone)
                self.scans += 1
            elif isinstance(event, Failed):
                self.error.emit(event.message)
        if listed:
            self.listed.emit(list(self.summaries.values()))
        if curves:
            self.curves_changed.emit([p for p in curves if p in self.selected])

    def _on_ended(self, last: Finished | Failed) -> None:
        if any(p not in self.curves for p in self.selected):
            self._request("curves", start=False)
        self._start_next()


def _name_under(root: Path | None, path: Path) -> str:
    if root is not None:
        try:
            name = str(path.resolve().relative_to(root.resolve()))
            return name if name != "." else path.name
        except ValueError:
            pass
    return path.name


def scan_job(root: Path | None, extra: list[Path], control: JobControl) -> Iterator:
    """Every run under ``root`` and in ``extra``, one ``RunSummary`` each as it is read,
    then ``ScanDone``."""
    paths = find_runs(root) if root is not None else []
    seen = {p.resolve() for p in paths}
    for p in extra:
        if is_run_dir(p) and p.resolve() not in seen:
            seen.add(p.resolve())
            paths.append(p)
    for path in paths:
        control.checkpoint()
        yield summarize_run(path, _name_under(root, path))
    yield ScanDone(tuple(paths))
    yield Finished(len(paths), None, {"runs": len(paths)})


def _read(path: Path, readers: dict[Path, RunCurves]) -> bool:
    """Read a run's appended rows; True when they changed. A metrics file that cannot
    be read (gone, a line that is not JSON) leaves the curves as they were."""
    reader = readers.setdefault(path, RunCurves(path))
    try:
        return reader.update()
    except (OSError, ValueError, KeyError):
        return False


def curves_job(paths: list[Path], readers: dict[Path, RunCurves], control: JobControl) -> Iterator:
    for path in paths:
        control.checkpoint()
        _read(path, readers)
        yield CurvesRead(path, readers[path].data())
    yield Finished(len(paths), None, {})


def live_job(running: list[Path], names: dict[Path, str], selected: list[Path], readers: dict[Path, RunCurves],
             control: JobControl) -> Iterator:
    """The runs being written, summarised again; the selected runs' curves where new
    rows came."""
    for path in running:
        control.checkpoint()
        yield summarize_run(path, names.get(path))
    for path in selected:
        control.checkpoint()
        if _read(path, readers):
            yield CurvesRead(path, readers[path].data())
    yield Finished(len(running), None, {})

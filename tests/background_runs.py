"""Runs of the real ``diffusion-studio train`` that several tests read, started in the
background when the session's tests are collected, and only when a collected test asks
for one (tests/conftest.py). pytest and each run use one thread: on 2 cores the second
one is otherwise idle, so the training overlaps the tests before the first reader; the
reader waits for the process and fails on its exit code as the test itself would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.engine.procs import ENV

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"

# fixture name -> the train command's arguments after ``train``
RUNS = {
    "quick_digits_run": (CONFIGS / "quick_digits.toml",),  # its 800 steps
    "quick_toy_run": (CONFIGS / "quick_toy.toml",),  # its 1500 steps
}


class BackgroundRun:
    """``diffusion-studio train ARGS --out FOLDER/NAME`` started now, output to files (a
    full pipe would stall it)."""

    def __init__(self, name: str, folder: Path):
        self.path = folder / name
        self._out, self._err = (open(folder / f"{name}.{kind}", "w+") for kind in ("out", "err"))
        self.proc = subprocess.Popen([sys.executable, "-m", "studio", "train", *map(str, RUNS[name]), "--out", str(self.path)],
                                     env=ENV, stdout=self._out, stderr=self._err, text=True)
        self.stderr = ""

    def finished(self, timeout: float = 900) -> "BackgroundRun":
        """Once the process exited with 0 (asserted), with its stderr read."""
        code = self.proc.wait(timeout=timeout)
        if self._err.closed:
            return self
        with self._out, self._err:
            self._err.seek(0)
            self.stderr = self._err.read()
        assert code == 0, self.stderr
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for f in (self._out, self._err):
            f.close()


class BackgroundRuns:
    """The runs one session started (in a folder of its own, removed at the end)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="studio-test-runs-"))
        self.runs: dict[str, BackgroundRun] = {}

    def start(self, names) -> None:
        for name in sorted(set(names) - set(self.runs)):
            self.runs[name] = BackgroundRun(name, self.folder)

    def get(self, name: str) -> BackgroundRun:
        self.start([name])  # asked for without being collected first (a plugin's own collection)
        return self.runs[name].finished()

    def close(self) -> None:
        for run in self.runs.values():
            run.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

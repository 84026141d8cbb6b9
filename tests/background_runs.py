"""Runs of the real ``diffusion-studio train`` that several tests read, started in the
background when the session's tests are collected, and only when a collected test asks
for one (tests/conftest.py), one after another. pytest and each run use one thread: on
2 cores the second one is otherwise idle, so the training overlaps the tests before the
first reader; the reader waits for the process and fails on its exit code as the test
itself would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.engine.procs import ENV

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"


def tiny(**settings):
    """The config of a tiny_runs run (tests/cli_runs.py), written into the session's folder."""
    def config(folder: Path, name: str) -> Path:
        from tests.cli_runs import write_config

        return write_config(folder, name, **settings)
    return config


# run name -> (its config: a path or a function of the folder and name, the exit code expected)
RUNS = {
    "quick_digits_run": (CONFIGS / "quick_digits.toml", 0),  # its 800 steps
    "quick_toy_run": (CONFIGS / "quick_toy.toml", 0),  # its 1500 steps
    # tiny_runs (tests/conftest.py): the runs index and Runs panel tests' runs
    "tiny_base": (tiny(), 0),
    "tiny_low_lr": (tiny(lr=1e-3), 0),
    "tiny_nan": (tiny(lr=1e12, warmup=0, checkpoint_every=1), 3),  # a NaN stop
}
# fixture name -> the runs it reads
FIXTURES = {"quick_digits_run": ("quick_digits_run",), "quick_toy_run": ("quick_toy_run",),
            "tiny_runs": ("tiny_base", "tiny_low_lr", "tiny_nan")}


class BackgroundRun:
    """``diffusion-studio train ARGS --out FOLDER/NAME`` started now, output to files (a
    full pipe would stall it)."""

    def __init__(self, name: str, folder: Path):
        self.path = folder / name
        config, self.code = RUNS[name]
        config = config if isinstance(config, Path) else config(folder, name)
        self._out, self._err = (open(folder / f"{name}.{kind}", "w+") for kind in ("out", "err"))
        self.proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(config), "--out", str(self.path)],
                                     env=ENV, stdout=self._out, stderr=self._err, text=True)
        self.stderr = ""

    def finished(self, timeout: float = 900) -> "BackgroundRun":
        """Once the process exited with its expected code (asserted), with its stderr read."""
        code = self.proc.wait(timeout=timeout)
        if self._err.closed:
            return self
        with self._out, self._err:
            self._err.seek(0)
            self.stderr = self._err.read()
        assert code == self.code, self.stderr
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for f in (self._out, self._err):
            f.close()


class BackgroundRuns:
    """The runs one session asked for (in a folder of its own, removed at the end), trained
    one after another on a thread, so pytest keeps its own core; a run a fixture asks for
    before its turn starts at once."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="studio-test-runs-"))
        self.runs: dict[str, BackgroundRun] = {}
        self.queue: list[str] = []
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self, names) -> None:
        with self.lock:
            self.queue += sorted(set(names) - set(self.runs) - set(self.queue))
            if self.queue and self.thread is None:
                self.thread = threading.Thread(target=self._train_in_turn, daemon=True)
                self.thread.start()

    def _train_in_turn(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    self.thread = None
                    return
                run = self._launch(self.queue.pop(0))
            run.proc.wait()

    def _launch(self, name: str) -> BackgroundRun:
        """With the lock held."""
        if name in self.queue:
            self.queue.remove(name)
        run = self.runs[name] = BackgroundRun(name, self.folder)
        return run

    def get(self, fixture: str) -> dict[str, BackgroundRun]:
        """The runs a fixture reads, finished."""
        with self.lock:
            for name in FIXTURES[fixture]:
                if name not in self.runs:
                    self._launch(name)  # not its turn yet, or never collected
        return {name: self.runs[name].finished() for name in FIXTURES[fixture]}

    def close(self) -> None:
        with self.lock:
            self.queue.clear()
            for run in self.runs.values():
                run.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

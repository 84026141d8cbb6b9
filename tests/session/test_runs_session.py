"""RunsSession headless: the table, the selection's curves and differing keys, read on
its worker thread and handed over by poll()."""

from __future__ import annotations

import shutil
import threading
import tomllib
from pathlib import Path

import numpy as np

from studio.engine.trainer import train_job
from studio.session.runs import RunsSession

CONFIGS = Path(__file__).resolve().parents[2] / "resources" / "configs"


def tiny(lr: float) -> dict:
    raw = tomllib.loads((CONFIGS / "quick_toy.toml").read_text())
    raw["data"]["n"] = 500
    raw["network"].update(hidden=16, depth=1)
    raw["train"].update(steps=20, batch_size=32, log_every=5, checkpoint_every=20, preview_every=0, warmup=2, lr=lr)
    return raw


def test_lists_selects_and_compares_on_the_worker(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    list(train_job(tiny(2e-3), root / "a"))
    list(train_job(tiny(1e-3), root / "b"))
    for k in range(60):  # many runs: the table fills as the worker reads them
        shutil.copytree(root / "a", root / "many" / f"copy{k:02d}")
    outside = tmp_path / "elsewhere"
    shutil.copytree(root / "b", outside)

    import studio.session.runs as runs_module

    readers = set()  # the threads that read run folders: never the owner's
    real = runs_module.summarize_run
    monkeypatch.setattr(runs_module, "summarize_run", lambda *a: (readers.add(threading.current_thread()), real(*a))[1])
    session = RunsSession(root)
    threads, tables = set(), []
    session.listed.connect(lambda rows: (threads.add(threading.current_thread()), tables.append(len(rows))))
    session.refresh()
    assert session.wait_idle(60)
    assert threads == {threading.current_thread()}  # handed over on the owner's thread
    assert readers and threading.current_thread() not in readers
    assert tables[-1] == 62 and len(tables) >= 1
    names = {s.name for s in session.summaries.values()}
    assert {"a", "b", "many/copy00", "many/copy59"} <= names
    assert {s.state for s in session.summaries.values()} == {"finished"}

    session.add_run(outside)
    assert session.wait_idle(60) and len(session.summaries) == 63

    changed = []
    session.curves_changed.connect(changed.append)
    session.select([root / "a", root / "b"])
    assert session.wait_idle(60)
    assert set(session.curves) == {root / "a", root / "b"} and changed
    np.testing.assert_array_equal(session.curves[root / "a"].step, np.arange(1, 21))
    assert session.differing() == {"train.lr": [2e-3, 1e-3]}
    assert session.label(root / "b") == "lr=0.001"

    shutil.rmtree(root / "many")
    session.refresh()
    assert session.wait_idle(60) and len(session.summaries) == 3  # the runs that went away left the table
    session.shutdown()

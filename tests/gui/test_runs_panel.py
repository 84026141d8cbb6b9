"""The Runs panel through the real MainWindow, over runs the CLI made in this test: the
table lists them (one still being written, live), two overlaid with the one setting
they differ in named in the legend and the differing-keys table, row actions (viewer,
reveal, follow the running one, resume it once its writer is gone)."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices

from studio.engine.run_index import format_value, tensorboard_smooth
from studio.gui.app import build_window
from studio.gui.panels.runs.table import COLUMNS
from tests.cli_runs import rows, start, stop


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_runs):
    root = tmp_path_factory.mktemp("runs_panel") / "runs"
    return root, {name: shutil.copytree(tiny_runs[name], root / name) for name in ("base", "low_lr")}


def cell(panel, path, column: str) -> str:
    row = panel.model.row_of(path)
    return panel.model.index(row, COLUMNS.index(column)).data()


@pytest.mark.slow
def test_runs_panel_lists_overlays_compares_and_follows(qtbot, state, settings, monkeypatch, finished):
    root, made = finished
    base, low = made["base"], made["low_lr"]
    proc, live = start(root, "live")
    try:
        w = build_window(state, settings=settings)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        panel = w.panel("runs")
        panel.set_root(root)

        # --- every run listed, the one being written as running ------------------------------
        qtbot.waitUntil(lambda: panel.model.rowCount() == 3 and cell(panel, live, "State") == "running", timeout=20000)
        assert cell(panel, base, "State") == "finished" and cell(panel, base, "Method") == "ddpm"
        assert cell(panel, base, "Schedule") == "linear" and cell(panel, base, "Network") == "mlp"
        assert cell(panel, base, "Step") == "40 / 40"
        assert cell(panel, base, "Loss") == format_value(rows(base)[-1]["loss_smooth"])
        assert "3 run(s), 1 running" == panel.count_label.text()

        # sortable: by loss, the proxy's order follows the values
        panel.table.sortByColumn(COLUMNS.index("Loss"), Qt.SortOrder.AscendingOrder)
        order = [panel.proxy.index(r, COLUMNS.index("Loss")).data() for r in range(3)]
        assert [float(v) for v in order] == sorted(float(v) for v in order)

        # --- two overlaid: one colour each, the legend names the differing setting -------------
        panel.select_runs([base, low])
        qtbot.waitUntil(lambda: len(panel.overlays.curve_data("loss")) == 2, timeout=20000)
        assert panel.overlays.legend_labels() == ["lr=0.002", "lr=0.001"]
        assert panel.differing_rows() == {"train.lr": ["0.002", "0.001"]}
        (x0, y0), (x1, y1) = panel.overlays.curve_data("loss")
        np.testing.assert_array_equal(x0, np.arange(1, 41))
        np.testing.assert_allclose(y0, tensorboard_smooth(np.array([r["loss"] for r in rows(base)]), 0.6))
        np.testing.assert_allclose(y1, tensorboard_smooth(np.array([r["loss"] for r in rows(low)]), 0.6))
        assert len(set(panel.colors().values())) == 2
        panel.axis_combo.setCurrentIndex(panel.axis_combo.findData("samples"))
        np.testing.assert_array_equal(panel.overlays.curve_data("loss")[0][0], np.arange(1, 41) * 64)
        assert all(len(x) > 3 for x, _ in panel.overlays.curve_data("levels"))
        assert all(len(x) == 8 for x, _ in panel.overlays.curve_data("throughput"))

        # --- row actions ------------------------------------------------------------------------
        panel.select_runs([base])
        qtbot.waitUntil(lambda: len(panel.overlays.curve_data("loss")) == 1)
        assert "Select two or more" in panel.diff_title.text()
        panel.viewer_button.click()
        assert state.run_dir == base
        opened = []
        monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
        panel.reveal_button.click()
        assert opened == [str(base)]
        assert not panel.resume_button.isEnabled()  # finished

        # --- the running one: followed by the training panel, live in the table and plots ----
        panel.select_runs([live])
        qtbot.waitUntil(lambda: len(panel.overlays.curve_data("loss")) == 1 and panel.session.selected == [live], timeout=20000)
        assert not panel.resume_button.isEnabled()  # someone is writing it
        panel.follow_button.click()
        training = w.panel("training")
        assert training.mode == "following" and training.run_dir == live
        step0 = panel.session.summaries[live].step
        points0 = len(panel.overlays.curve_data("loss")[0][0])
        qtbot.waitUntil(lambda: panel.session.summaries[live].step > step0 + 10, timeout=30000)
        qtbot.waitUntil(lambda: len(panel.overlays.curve_data("loss")[0][0]) > points0 + 10, timeout=30000)
        assert int(cell(panel, live, "Step").split(" /")[0]) > step0

        # its writer killed: stopped, and resumable from the row
        os.kill(proc.pid, signal.SIGKILL)
        stop(proc)
        qtbot.waitUntil(lambda: cell(panel, live, "State") == "stopped", timeout=20000)
        qtbot.waitUntil(lambda: panel.resume_button.isEnabled(), timeout=5000)
        assert panel.resume()
        assert training.mode == "training" and training.run_dir == live
        qtbot.waitUntil(lambda: cell(panel, live, "State") == "running", timeout=30000)
        training.stop()
        qtbot.waitUntil(lambda: not training.bridge.running, timeout=60000)
        qtbot.waitUntil(lambda: cell(panel, live, "State") == "stopped", timeout=20000)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            stop(proc)


def test_runs_panel_in_process_runs(qtbot, state, settings, tmp_path):
    """The quick check of the same view (runs trained in this process, no subprocess):
    listed, two overlaid with their one differing key, a third with another schedule."""
    import tomllib

    from studio.engine.trainer import train_job
    from tests.cli_runs import sections
    from tests.engine.procs import tiny_toml

    root = tmp_path / "runs"
    for name, family, lr in (("a", "linear", 2e-3), ("b", "linear", 1e-3), ("c", "cosine", 2e-3)):
        raw = tomllib.loads(tiny_toml(15, 15, **sections(family, lr, warmup=2)))
        list(train_job(raw, root / name))
    w = build_window(state, settings=settings)
    qtbot.addWidget(w)
    panel = w.panel("runs")
    panel.set_root(root)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=20000)
    assert [cell(panel, root / n, "State") for n in "abc"] == ["finished"] * 3
    panel.select_runs([root / "a", root / "b"])
    qtbot.waitUntil(lambda: len(panel.overlays.curve_data("loss")) == 2, timeout=20000)
    assert panel.differing_rows() == {"train.lr": ["0.002", "0.001"]}
    assert panel.overlays.legend_labels() == ["lr=0.002", "lr=0.001"]
    panel.select_runs([root / "a", root / "c"])
    qtbot.waitUntil(lambda: panel.overlays.legend_labels()[:1] == ["family=linear"], timeout=20000)
    diff = panel.differing_rows()
    assert list(diff)[0] == "schedule.family" and diff["schedule.family"] == ["linear", "cosine"]
    assert diff["schedule.s"] == ["-", "0.008"]
    assert "train.lr" not in diff
    [png] = panel.export_plots(tmp_path / "plots")
    assert png.stat().st_size > 1000

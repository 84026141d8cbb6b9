"""Save a screenshot of the Runs panel over a folder of runs, every run selected.

    python scripts/screenshot_runs.py RUNS_DIR OUT.png [--axis step|time|samples]

Make the runs first, e.g. three ``ddpm_toy`` runs that differ in the schedule:
``diffusion-studio train linear.toml --out RUNS_DIR/linear --steps 600`` (and cosine,
sigmoid), optionally ``diffusion-studio evaluate RUNS_DIR/linear`` for the figures column.
Like scripts/screenshots.py it re-runs itself under ``xvfb-run`` without a display;
settings go to a temporary file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import reexec_under_xvfb, settle  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--axis", default="step", choices=("step", "time", "samples"))
    args = parser.parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from studio.gui.app import build_window, default_state

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "studio.ini"), QSettings.Format.IniFormat)
    window = build_window(default_state(), settings=settings)
    window.resize(1500, 1000)
    window.show()
    window.docks["data"].hide()  # the whole width for the runs
    window.raise_panel("runs")
    panel = window.panel("runs")
    panel.set_root(args.runs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (panel.session.busy or not panel.session.summaries):
        panel.session.poll()
        settle(app, 0.1)
    paths = sorted(panel.session.summaries)
    panel.select_runs(paths)
    panel.axis_combo.setCurrentIndex(panel.axis_combo.findData(args.axis))
    while time.monotonic() < deadline and len(panel.overlays.overlays) < len(paths):
        settle(app, 0.1)
    settle(app, 1.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(args.out))
    print(f"{args.out}: {len(paths)} runs; legend {panel.overlays.legend_labels()}; differing {list(panel.differing_rows())}")
    window.close()
    return 0


if __name__ == "__main__":
    reexec_under_xvfb()
    sys.exit(main(sys.argv[1:]))

"""Launch to first paint, and the GUI stall of the first Start, of the real app.

    xvfb-run -a .venv/bin/python bench/bench_launch.py [--reps 5] [--after 1.0] [--watch 3.0]

Each repetition is a fresh process running the ``diffusion-studio`` entry point
(``studio.cli.main([])``: pre-flight check, imports, QApplication, every panel, show).
``paint``: seconds from just before the process starts to the first paint event of any
widget (the window on screen). ``start stall``: ``--after`` seconds after that paint the
Training panel's Start is pressed (a run of the default data and schedule, in a temporary
folder) and a 5 ms GUI timer records its largest lateness until the job runs (Start
waits for a warm-up still in progress) and ``--watch`` seconds more: how long the
window froze; also how long after the press the job ran. Also ``max lateness before Start`` (the warm-up in
the background must not freeze the window either). Prints the median of each over the
repetitions (target: paint < 2 s, stalls < 100 ms). Needs a display (xvfb-run) or
QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
after, watch = float(os.environ["BENCH_AFTER"]), float(os.environ["BENCH_WATCH"])
import studio.gui.app as app_mod

build = app_mod.build_window
found = {}

def build_window(state, settings=None):
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    window = build(state, settings)

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if "paint" not in found and event.type() == QEvent.Type.Paint:
                found["paint"] = time.time() - t0
                QTimer.singleShot(0, begin)
            return False

    app = QApplication.instance()
    found["filter"] = FirstPaint(app)
    app.installEventFilter(found["filter"])
    gaps = {"before": 0.0, "after": 0.0}
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        phase = "after" if "started" in found else "before"
        gaps[phase] = max(gaps[phase], now - last[0] - 0.005)
        last[0] = now

    def begin():
        timer = QTimer(app, interval=5)
        timer.timeout.connect(tick)
        timer.start()
        found["timer"] = timer
        last[0] = time.perf_counter()
        QTimer.singleShot(int(after * 1000), press_start)

    def press_start():
        panel = window.panel("training")
        panel.runs_root.setText(os.environ["BENCH_RUNS"])
        last[0] = time.perf_counter()
        found["pressed"] = time.perf_counter()
        found["started"] = panel.start()
        wait_running()

    def wait_running():  # Start may wait for the background warm-up before the job runs
        if window.panel("training").bridge.running:
            found["delay"] = time.perf_counter() - found["pressed"]
            QTimer.singleShot(int(watch * 1000), finish)
        else:
            QTimer.singleShot(20, wait_running)

    def finish():
        print("BENCH " + json.dumps({"paint": found["paint"], "stall_before": gaps["before"], "delay": found["delay"],
                                     "stall_start": gaps["after"], "started": bool(found["started"])}), flush=True)
        os._exit(0)  # a training job is running: no close dialog, no final checkpoint

    return window

app_mod.build_window = build_window
from studio.cli import main
sys.exit(main([]))
"""


def one(after: float, watch: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_AFTER": str(after), "BENCH_WATCH": str(watch), "BENCH_RUNS": tmp,
               "XDG_CONFIG_HOME": tmp}  # a first start: no remembered layout or plugins folder
        env["BENCH_T0"] = repr(time.time())
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"the app did not report (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(line[6:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--after", type=float, default=1.0, help="seconds after the first paint to press Start")
    p.add_argument("--watch", type=float, default=3.0, help="seconds to watch the GUI after Start")
    args = p.parse_args()
    rows = []
    for rep in range(args.reps):
        r = one(args.after, args.watch)
        rows.append(r)
        print(f"rep {rep + 1}: paint {r['paint']:.2f} s, max lateness before Start {r['stall_before'] * 1e3:.0f} ms, "
              f"after Start {r['stall_start'] * 1e3:.0f} ms (job running {r['delay']:.2f} s after the press)", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("paint", "stall_before", "stall_start", "delay")}
    print(f"median of {args.reps}: launch to first paint {med['paint']:.2f} s (target < 2 s); GUI stall before Start "
          f"{med['stall_before'] * 1e3:.0f} ms, first Start {med['stall_start'] * 1e3:.0f} ms (target < 100 ms), "
          f"running {med['delay']:.2f} s after the press; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

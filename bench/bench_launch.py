"""Launch to the main window's first paint, every panel built, and the GUI stall of the
first Start, of the real app.

    xvfb-run -a .venv/bin/python bench/bench_launch.py [--reps 5] [--after 1.0] [--watch 3.0] [--tree DIR]

Each repetition is a fresh process running the ``diffusion-studio`` entry point
(``studio.cli.main([])``: pre-flight check, QApplication, the main window, the imports,
the panels). ``paint``: seconds from just before the process starts to the first paint
event of a widget of the main window (a splash does not count). ``ready``: to every
panel built (``MainWindow.all_panels_built``; with a tree whose window is shown with its
panels built, the paint). ``start stall``: ``--after`` seconds after ready the Training
panel's Start is pressed (a run of the default data and schedule, in a temporary
folder) and a 5 ms GUI timer records its largest lateness until the job runs (Start
waits for a warm-up still in progress) and ``--watch`` seconds more: how long the window
froze; also how long after the press the job ran, and ``max lateness before Start``
(from the paint on: the imports and panel builds must not freeze the window long
either). Prints the median of each over the repetitions (target: paint < 2 s, first
Start stall < 100 ms) and the load average. ``--tree DIR``: run the code of another
checkout (``git archive c5ac0ad | tar -x -C DIR``), repetitions alternating with this
one, for a ratio at the same load. Needs a display (xvfb-run) or QT_QPA_PLATFORM=offscreen.
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
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

app = QApplication([sys.argv[0]])  # the app's main() takes this one
found = {}
gaps = {"before": 0.0, "after": 0.0}
last = [time.perf_counter()]

def tick():
    now = time.perf_counter()
    phase = "after" if "pressed" in found else "before"
    gaps[phase] = max(gaps[phase], now - last[0] - 0.005)
    last[0] = now

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if "paint" not in found and event.type() == QEvent.Type.Paint and obj.isWidgetType() \
                and isinstance(obj.window(), QMainWindow):
            found["paint"] = time.time() - t0
            found["torch_at_paint"] = "torch" in sys.modules
            window = found["window"] = obj.window()
            timer = found["timer"] = QTimer(app, interval=5)
            timer.timeout.connect(tick)
            timer.start()
            last[0] = time.perf_counter()
            if hasattr(window, "all_panels_built") and len(window.panels) < len(window.docks):
                window.all_panels_built.connect(ready)
            else:  # every panel was built before the window showed
                QTimer.singleShot(0, ready)
        return False

def ready():
    found.setdefault("ready", time.time() - t0)
    QTimer.singleShot(int(after * 1000), press_start)

def press_start():
    panel = found["window"].panel("training")
    panel.runs_root.setText(os.environ["BENCH_RUNS"])
    last[0] = time.perf_counter()
    found["pressed"] = time.perf_counter()
    found["started"] = panel.start()
    wait_running()

def wait_running():  # Start may wait for the background warm-up before the job runs
    if found["window"].panel("training").bridge.running:
        found["delay"] = time.perf_counter() - found["pressed"]
        QTimer.singleShot(int(watch * 1000), finish)
    else:
        QTimer.singleShot(20, wait_running)

def finish():
    print("BENCH " + json.dumps({k: found[k] for k in ("paint", "ready", "delay", "torch_at_paint")}
                                | {"stall_before": gaps["before"], "stall_start": gaps["after"],
                                   "started": bool(found["started"])}), flush=True)
    os._exit(0)  # a training job is running: no close dialog, no final checkpoint

probe = FirstPaint()
app.installEventFilter(probe)
from studio.cli import main
sys.exit(main([]))
"""


def one(after: float, watch: float, tree: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_AFTER": str(after), "BENCH_WATCH": str(watch), "BENCH_RUNS": tmp,
               "XDG_CONFIG_HOME": tmp}  # a first start: no remembered layout or plugins folder
        if tree is not None:  # that checkout's studio/ first on the path
            env["PYTHONPATH"] = os.path.abspath(tree)
        env["BENCH_T0"] = repr(time.time())
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300,
                             cwd=tree)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"the app did not report (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(line[6:]) | {"load": os.getloadavg()[0]}


KEYS = ("paint", "ready", "stall_before", "stall_start", "delay")


def report(name: str, rows: list[dict]) -> None:
    med = {k: statistics.median(r[k] for r in rows) for k in KEYS + ("load",)}
    print(f"{name}: median of {len(rows)}: launch to main window's first paint {med['paint']:.2f} s (target < 2 s), "
          f"all panels ready {med['ready']:.2f} s; GUI stall before Start {med['stall_before'] * 1e3:.0f} ms, "
          f"first Start {med['stall_start'] * 1e3:.0f} ms (target < 100 ms), running {med['delay']:.2f} s after "
          f"the press; torch imported at paint in {sum(r['torch_at_paint'] for r in rows)}/{len(rows)}; "
          f"load average {med['load']:.1f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--after", type=float, default=1.0, help="seconds after all panels are ready to press Start")
    p.add_argument("--watch", type=float, default=3.0, help="seconds to watch the GUI after Start")
    p.add_argument("--tree", help="also run another checkout's code (e.g. the commit before), alternating")
    args = p.parse_args()
    trees = {"this tree": None} | ({f"tree {args.tree}": args.tree} if args.tree else {})
    rows: dict[str, list[dict]] = {name: [] for name in trees}
    for rep in range(args.reps):
        for name, tree in trees.items():
            r = one(args.after, args.watch, tree)
            rows[name].append(r)
            print(f"{name} rep {rep + 1}: paint {r['paint']:.2f} s (torch imported: {r['torch_at_paint']}), ready "
                  f"{r['ready']:.2f} s, max lateness before Start {r['stall_before'] * 1e3:.0f} ms, after Start "
                  f"{r['stall_start'] * 1e3:.0f} ms (job running {r['delay']:.2f} s after the press), "
                  f"load {r['load']:.1f}", flush=True)
    for name in trees:
        report(name, rows[name])


if __name__ == "__main__":
    main()

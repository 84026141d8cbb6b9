"""Soak: the app training and sampling for a long time, previews on and the viewer
scrubbing, with the process's RSS and the GUI timer's lateness sampled every minute.

One MainWindow (offscreen): the training panel trains a 2-D DDPM for the whole soak
(previews every 500 steps, checkpoints every 1000); whenever the viewer is idle and the
run has a checkpoint it samples again (256 points, 100 steps, streamed into a trajectory
file; the trajectories it no longer shows are deleted, so the disk stays flat), and
every 100 ms it shows another step of what it has (scrubbing). A 20 ms precise QTimer
records its own lateness (actual interval minus 20 ms). Every ``--interval`` seconds one
row: minute, RSS (MB), lateness p50 / p99 (ms) over that minute, training step,
samplings finished, the 1-minute load average. At the end the least-squares slopes of
RSS (MB/min) and of p99 lateness (ms/min) over the rows after ``--warmup`` minutes, and
the median p99 of the first and last third of those rows (the trend in plain numbers).
The bench keeps nothing per row but the row (the training step comes from the panel's
own history), and removes its temporary folder at the end unless ``--keep``.

Target: no upward trend in RSS beyond the first minutes (beyond what the training
history must hold: ~5 floats a step), p99 lateness steady.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_soak.py [--minutes 30] [--interval 60] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

CONFIG = """
[data]
source = "toy"
name = "swiss_roll"
n = 5000

[schedule]
family = "linear"
steps = 100
beta_start = 1e-3
beta_end = 0.2

[method]
name = "ddpm"

[network]
kind = "mlp"
hidden = 128
depth = 2

[train]
steps = 100000000
batch_size = 256
lr = 1e-3
log_every = 10
checkpoint_every = 1000
keep_checkpoints = 2
preview_every = 500
preview_n = 256
preview_steps = 20
device = "cpu"
seed = 0

[sample]
sampler = "ancestral"
steps = 100
n = 256
"""


SAMPLE_N = 256  # points the viewer samples each time


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of y over x (nan with fewer than 2 points)."""
    if len(x) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between rows")
    ap.add_argument("--warmup", type=float, default=3.0, help="minutes left out of the slopes")
    ap.add_argument("--json", help="write the rows and slopes here")
    ap.add_argument("--no-scrub", action="store_true", help="sample but never show a step (isolates the drawing's cost)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (run, trajectories)")
    args = ap.parse_args()

    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.gui.app import build_window, default_state

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="soak_"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    window = build_window(default_state(), settings=QSettings(str(tmp / "studio.ini"), QSettings.Format.IniFormat))
    window.resize(1600, 1000)
    window.show()
    training, viewer = window.panel("training"), window.panel("viewer")
    training.ask_stop_on_close = lambda: True
    training.runs_root.setText(str(tmp / "runs"))
    config = tmp / "soak.toml"
    config.write_text(CONFIG)
    assert training.load_toml(config), training.banner.text()
    assert training.start(), training.banner.text()

    proc, rng = psutil.Process(), random.Random(0)
    clock, stamps = QElapsedTimer(), []
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(20)
    probe.timeout.connect(lambda: stamps.append(clock.nsecsElapsed()))
    rows: list[dict] = []
    counts: dict = {"samplings": 0, "scrubs": 0}
    t0 = time.monotonic()

    def scenario() -> None:
        if viewer.idle and viewer.data is not None and viewer.data.complete:
            counts["samplings"] += 1
        if viewer.idle and training.run_dir is not None and (Path(training.run_dir) / "checkpoints").is_dir() \
                and any((Path(training.run_dir) / "checkpoints").iterdir()):
            viewer.form.n.setValue(SAMPLE_N)  # the viewer offers 2000 points for 2-D runs
            viewer.start_sampling()
            current = viewer._paths.get("main")
            for old in (Path(training.run_dir) / "samples").glob("viewer_*.h5"):
                if old != current:  # closed by start_sampling (set_data(None))
                    old.unlink(missing_ok=True)
        data = viewer.data
        if data is not None and data.count > 0 and not args.no_scrub:
            viewer.show_step(rng.randrange(data.count))
            counts["scrubs"] += 1

    def sample_row() -> None:
        late = np.diff(np.asarray(stamps, float)) / 1e6 - 20.0 if len(stamps) > 1 else np.zeros(1)
        stamps[:] = stamps[-1:]
        step = int(training.history.step)  # the panel's own (a RunDir here would hold every row: RSS)
        rows.append({"minute": round((time.monotonic() - t0) / 60.0, 2), "rss_mb": proc.memory_info().rss / 2**20,
                     "late_p50_ms": float(np.percentile(late, 50)), "late_p99_ms": float(np.percentile(late, 99)),
                     "step": step, "samplings": counts["samplings"], "scrubs": counts["scrubs"],
                     "load": os.getloadavg()[0]})
        r = rows[-1]
        print(f"{r['minute']:7.2f} min  rss {r['rss_mb']:8.1f} MB  late p50 {r['late_p50_ms']:7.2f} ms  "
              f"p99 {r['late_p99_ms']:8.2f} ms  step {step:8d}  samplings {r['samplings']:4d}  "
              f"scrubs {r['scrubs']:6d}  load {r['load']:5.1f}", flush=True)
        if time.monotonic() - t0 >= args.minutes * 60.0:
            app.quit()

    tick = QTimer()
    tick.setInterval(100)
    tick.timeout.connect(scenario)
    row_timer = QTimer()
    row_timer.setInterval(int(args.interval * 1000))
    row_timer.timeout.connect(sample_row)
    clock.start()
    probe.start()
    tick.start()
    row_timer.start()
    sample_row()  # minute 0
    app.exec()
    tick.stop()
    training.stop()
    training.bridge.stop_and_wait(60)
    viewer.bridge.stop_and_wait(60) if viewer.bridge.running else None

    kept = [r for r in rows if r["minute"] >= args.warmup]
    third = max(1, len(kept) // 3)
    p99_first = float(np.median([r["late_p99_ms"] for r in kept[:third]])) if kept else float("nan")
    p99_last = float(np.median([r["late_p99_ms"] for r in kept[-third:]])) if kept else float("nan")
    result = {
        "minutes": rows[-1]["minute"],
        "rss_slope_mb_per_min": slope([r["minute"] for r in kept], [r["rss_mb"] for r in kept]),
        "p99_slope_ms_per_min": slope([r["minute"] for r in kept], [r["late_p99_ms"] for r in kept]),
        "rss_first_mb": rows[0]["rss_mb"], "rss_last_mb": rows[-1]["rss_mb"],
        "p99_first_third_ms": p99_first, "p99_last_third_ms": p99_last,
        "steps": rows[-1]["step"], "samplings": rows[-1]["samplings"], "scrubs": rows[-1]["scrubs"],
        "load_average": os.getloadavg(), "cpus": os.cpu_count(), "rows": rows,
    }
    print(f"RSS slope after minute {args.warmup:g}: {result['rss_slope_mb_per_min']:.3f} MB/min; "
          f"p99 lateness slope {result['p99_slope_ms_per_min']:.3f} ms/min; {result['steps']} steps, "
          f"{result['samplings']} samplings, {result['scrubs']} scrubs in {result['minutes']:.1f} min")
    print(f"RSS {result['rss_first_mb']:.0f} MB at start, {kept[0]['rss_mb'] if kept else float('nan'):.0f} MB at minute "
          f"{args.warmup:g}, {result['rss_last_mb']:.0f} MB at the end; p99 lateness median {p99_first:.1f} ms in the "
          f"first third after the warm-up, {p99_last:.1f} ms in the last; load average {result['load_average'][0]:.1f} "
          f"on {result['cpus']} CPUs", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    window.close()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Is the app responsive while it trains at full speed, and does the GUI cost throughput?

In one run, interleaved (A B A B ...):

  A  headless: ``train_job`` iterated on the main thread, as ``diffusion-studio train``
     does (no Qt at all)
  C  the same window idle, no training: the probe's floor on this machine at this moment
  B  the app: the training panel's Start (offscreen Qt), the job on its worker thread,
     the panel's 10 Hz plot timer redrawing every curve and the heatmap, while a
     QTimer(10 ms, precise) on the GUI thread records its own lateness (actual interval
     minus 10 ms)

Throughput is the job's own figure: steps / training seconds from the last row of the
run's metrics.jsonl (same clock, same code path in A and B; set-up excluded). Both use
the same intra-op thread count (the app uses 1 on 2 cores, docs/PITFALLS.md).

Targets: p99 lateness < 20 ms, throughput B / A >= 0.95.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui_responsiveness.py [--reps 3] [--steps 800]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.engine.trainer import train_job, warm_up  # noqa: E402

CONFIG = """
[data]
source = "toy"
name = "swiss_roll"
n = 20000

[schedule]
family = "linear"
steps = 1000

[method]
name = "ddpm"

[network]
kind = "mlp"
hidden = {hidden}
depth = {depth}

[train]
steps = {steps}
batch_size = {batch}
lr = 1e-3
log_every = 10
checkpoint_every = 1000
preview_every = 1000
preview_n = 256
preview_steps = 50
device = "cpu"
seed = 0
"""


def steps_per_s(run_dir: Path) -> float:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "time" in r]
    return timed[-1]["step"] / timed[-1]["time"]


def headless(config: Path, out: Path) -> float:
    for _ in train_job(config, out):
        pass
    return steps_per_s(out)


def in_app(app, config: Path, out_root: Path, idle_s: float = 0.0) -> tuple[float, np.ndarray, int, float]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from studio.gui.app import default_state
    from studio.gui.panels.training import TrainingPanel

    panel = TrainingPanel(default_state())
    panel.resize(1400, 900)
    panel.show()
    panel.runs_root.setText(str(out_root))
    assert panel.load_toml(config), panel.banner.text()

    clock = QElapsedTimer()
    stamps: list[int] = []
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(10)
    probe.timeout.connect(lambda: stamps.append(clock.nsecsElapsed()))
    loop = QEventLoop()
    panel.bridge.ended.connect(loop.quit)
    for _ in range(20):
        app.processEvents()
    clock.start()
    probe.start()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    if idle_s:  # the floor: the same window and probe, no training
        QTimer.singleShot(int(idle_s * 1000), loop.quit)
        loop.exec()
    else:
        assert panel.start(), panel.banner.text()
        loop.exec()  # the app's event loop, as app.exec() runs it, until the job ends
    gui_cpu = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
    probe.stop()
    frames = panel.plots.draws
    run_dir = panel.run_dir
    rate = steps_per_s(run_dir) if run_dir is not None else float("nan")
    panel.shutdown()
    panel.close()
    panel.deleteLater()
    app.processEvents()
    lateness = np.diff(np.array(stamps, dtype=np.float64)) / 1e6 - 10.0
    return rate, lateness, frames, gui_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for both (the app uses 1 on 2 cores)")
    ap.add_argument("--switch", type=float, default=None, help="sys.setswitchinterval for the whole run (experiment)")
    args = ap.parse_args()
    if args.switch:
        import sys

        sys.setswitchinterval(args.switch)
    torch.set_num_threads(args.threads)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    warm_up()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    config = tmp / "config.toml"
    config.write_text(CONFIG.format(steps=args.steps, hidden=args.hidden, depth=args.depth, batch=args.batch))
    print(f"MLP hidden {args.hidden} depth {args.depth}, batch {args.batch}, {args.steps} steps, "
          f"{args.threads} thread(s), {os.cpu_count()} cores; A = headless, B = the app")
    a_rates, b_rates, late_all, idle_all = [], [], [], []
    for rep in range(args.reps):
        a = headless(config, tmp / f"headless_{rep}")
        torch.set_num_threads(args.threads)  # the panel sets it too; keep A and B equal
        b, lateness, frames, gui_cpu = in_app(app, config, tmp / f"app_{rep}")
        _, idle, _, _ = in_app(app, config, tmp / f"idle_{rep}", idle_s=3.0)
        a_rates.append(a)
        b_rates.append(b)
        late_all.append(lateness)
        idle_all.append(idle)
        p50, p99, worst = np.percentile(lateness, 50), np.percentile(lateness, 99), lateness.max()
        print(f"rep {rep}: A {a:7.1f} steps/s   B {b:7.1f} steps/s   B/A {b / a:.3f}   "
              f"lateness p50 {p50:5.2f} ms  p99 {p99:5.2f} ms  max {worst:6.2f} ms  ({len(lateness)} ticks, "
              f"{frames} plot updates, GUI thread {100 * gui_cpu:.0f}% of a core)   "
              f"idle app p99 {np.percentile(idle, 99):5.2f} ms")
    late, idle = np.concatenate(late_all), np.concatenate(idle_all)
    a_med, b_med = statistics.median(a_rates), statistics.median(b_rates)
    print()
    print(f"throughput: headless {a_med:.1f} steps/s, app {b_med:.1f} steps/s, ratio {b_med / a_med:.3f} (target >= 0.95)")
    print(f"GUI timer lateness over {len(late)} ticks: p50 {np.percentile(late, 50):.2f} ms, "
          f"p99 {np.percentile(late, 99):.2f} ms (target < 20), max {late.max():.2f} ms")
    print(f"the same probe with the app idle (the machine's floor): p50 {np.percentile(idle, 50):.2f} ms, "
          f"p99 {np.percentile(idle, 99):.2f} ms, max {idle.max():.2f} ms")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (others' work skews both figures)")


if __name__ == "__main__":
    main()

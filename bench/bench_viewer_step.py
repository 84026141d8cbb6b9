"""How long the reverse-process viewer takes to show a new step (read from HDF5 + draw).

    .venv/bin/python bench/bench_viewer_step.py [--steps 1000] [--n 64] [--size 32] [--reps 300]

Writes a trajectory of ``steps`` x ``n`` images at 3 x size x size (random float16,
the engine's TrajectoryWriter: one uncompressed chunk per step), opens it in the real
ViewerPanel (offscreen Qt), then shows random steps the way scrubbing does
(``timeline.set_step``: three chunk reads, three uint8 mosaics, three ``setImage``) then
lets the event loop paint everything the change queued (three views, the timeline's
markers and label; ``processEvents``). Interleaved in the same
loop, for comparison: the engine's generic ``TrajectoryReader.step`` (refresh + float32
copies) alone. Prints median and p95 per phase, and the median total against the 16 ms
budget of a 60 Hz frame (target: <= 16 ms).

    .venv/bin/python bench/bench_viewer_step.py --points [--steps 100] [--n 256] [--reps 300]

2-D data as the soak scrubs it: trains a tiny 2-D DDPM (200 steps), samples ``steps`` x
``n`` points into a trajectory, opens both in the real ViewerPanel and shows random
steps: ``show_step`` on the GUI thread (the step read, the scatters, the paths and the
score field: the network call where it runs there, a draw of the kept field where a
worker evaluated it ahead), then ``paint``. The fields are given time to arrive before
the timed loop (``--cold`` times the first scrubs instead).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_trajectory(path: Path, steps: int, n: int, size: int) -> None:
    from studio.engine.trajectory import TrajectoryWriter

    rng = np.random.default_rng(0)
    shape = (n, 3, size, size)
    base = rng.random(shape, dtype=np.float32)
    noise = rng.standard_normal(shape, dtype=np.float32)
    with TrajectoryWriter(path, steps, shape, attrs={"data_kind": "images", "sampler": "ancestral", "steps": steps, "seed": 0}) as w:
        for i in range(steps):
            a = 1.0 - i / steps  # a fake reverse process: noise fading into the images
            x = (1 - a) * base + a * noise
            w.append(i, a, float(np.log((1 - a + 1e-3) / (a + 1e-3))), a, x, base, noise)
        w.finish(base)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--points", action="store_true", help="2-D points with the score field (steps 100, n 256 unless given)")
    p.add_argument("--cold", action="store_true", help="with --points: time the scrubs before the fields were evaluated")
    args = p.parse_args(argv)
    if args.points:
        return points_bench(args)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from studio.engine.trajectory import TrajectoryReader
    from studio.gui.panels.viewer.data import TrajectoryData
    from studio.gui.panels.viewer import ViewerPanel
    from studio.session import AppState

    folder = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    path = folder / "traj.h5"
    t0 = time.perf_counter()
    write_trajectory(path, args.steps, args.n, args.size)
    print(f"wrote {args.steps} steps x {args.n} x 3x{args.size}x{args.size} in {time.perf_counter() - t0:.1f} s "
          f"({path.stat().st_size / 2**20:.0f} MiB)")

    panel = ViewerPanel(AppState())
    panel.resize(1400, 900)
    panel.show()
    for _ in range(10):
        app.processEvents()
    t0 = time.perf_counter()
    panel.set_data(TrajectoryData(path))
    while panel.update_data():  # what the poll timer does over its ticks, all at once
        pass
    assert panel.data.count == args.steps
    print(f"opened in the viewer (per-step statistics of every step) in {time.perf_counter() - t0:.2f} s")
    views = [v for v in panel.image_views.views.values() if v.isVisible()]
    reader = TrajectoryReader(path)
    rng = np.random.default_rng(1)
    phases: dict[str, list[float]] = {"read + setImage": [], "paint (event loop)": [], "total": [],
                                      "engine TrajectoryReader.step": []}
    for _ in range(30):  # warm-up: caches, first paints
        panel.timeline.set_step(int(rng.integers(args.steps)))
        app.processEvents()
    painted = []
    for _ in range(args.reps):
        i = int(rng.integers(args.steps))
        while i == panel.timeline.step:
            i = int(rng.integers(args.steps))
        a = time.perf_counter()
        panel.timeline.set_step(i)  # reads step i from the file and hands the mosaics over
        b = time.perf_counter()
        app.processEvents()  # the paint of every view, the timeline markers and label
        c = time.perf_counter()
        reader.step(int(rng.integers(args.steps)))
        d = time.perf_counter()
        painted.append(panel._shown == i)
        phases["read + setImage"].append(b - a)
        phases["paint (event loop)"].append(c - b)
        phases["total"].append(c - a)
        phases["engine TrajectoryReader.step"].append(d - c)
    assert all(painted)
    assert panel._shown == panel.timeline.step
    print(f"\n{len(views)} views of {min(args.n, 64)} images each, {args.reps} random steps")
    print(f"{'phase':32s} {'median ms':>10s} {'p95 ms':>8s}")
    for name, values in phases.items():
        v = np.asarray(values) * 1e3
        print(f"{name:32s} {np.median(v):10.2f} {np.percentile(v, 95):8.2f}")
    total = float(np.median(phases["total"]) * 1e3)
    print(f"\nmedian new step (read + draw, all events processed): {total:.2f} ms = {total / 16:.2f} x the 16 ms budget "
          f"-> {'OK' if total <= 16 else 'OVER'}")
    print(f"viewer step / engine generic read alone: {np.median(phases['total']) / np.median(phases['engine TrajectoryReader.step']):.2f}")
    panel.shutdown()
    reader.close()
    return 0


def points_bench(args) -> int:
    import torch
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from studio.engine.jobs import sample_job, train_job
    from studio.gui.panels.viewer import ViewerPanel
    from studio.session import AppState

    torch.set_num_threads(1)  # as the app's session does while the GUI is up (docs/PITFALLS.md)
    steps = args.steps if args.steps != 1000 else 100
    n = args.n if args.n != 64 else 256
    folder = Path(tempfile.mkdtemp(prefix="bench-viewer-points-"))
    config = Path(__file__).resolve().parents[1] / "resources" / "configs" / "quick_toy.toml"
    for _ in train_job(config, folder / "run", steps=200):
        pass
    path = folder / "traj.h5"
    for _ in sample_job(folder / "run", steps=steps, n=n, seed=0, trajectory=path, records=False):
        pass
    state = AppState()
    panel = ViewerPanel(state)
    panel.resize(1400, 900)
    panel.show()
    for _ in range(10):
        app.processEvents()
    state.set_run_dir(folder / "run")
    assert panel.open_trajectory(path)
    while not panel.idle:
        app.processEvents()
        time.sleep(0.01)
    view, rng = panel.point_view, np.random.default_rng(1)

    def settle() -> None:  # the worker's fields, where the viewer evaluates them off the GUI thread
        while getattr(view, "field_busy", False):
            app.processEvents()
            time.sleep(0.005)

    if not args.cold:
        panel.timeline.set_step(0)
        settle()
    shown, painted = [], []
    for _ in range(args.reps):
        i = int(rng.integers(steps))
        while i == panel.timeline.step:
            i = int(rng.integers(steps))
        a = time.perf_counter()
        panel.timeline.set_step(i)
        b = time.perf_counter()
        app.processEvents()
        c = time.perf_counter()
        shown.append(b - a)
        painted.append(c - b)
    settle()
    print(f"{steps} steps x {n} points, {args.reps} random steps ({'cold' if args.cold else 'fields evaluated ahead'})")
    print(f"{'phase':32s} {'median ms':>10s} {'p95 ms':>8s}")
    for name, values in (("show_step (GUI thread)", shown), ("paint (event loop)", painted),
                         ("total", np.add(shown, painted))):
        v = np.asarray(values) * 1e3
        print(f"{name:32s} {np.median(v):10.2f} {np.percentile(v, 95):8.2f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    panel.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

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
    args = p.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

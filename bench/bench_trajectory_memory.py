"""Peak memory of a trajectory export: 1000 steps x 64 images x 3x32x32.

Kept whole in float16, x_t, x0_hat and eps_hat would take 1.18 GB; the sample job
streams each step into the HDF5 file, so the process's peak RSS stays far below that.
Trains a real (tiny: base 8 channels) UNet for a few steps on random 32x32 RGB images
in a child process, then runs the real sample job with the real writer here and prints
the peak resident set size (ru_maxrss) and the file's size.

    .venv/bin/python bench/bench_trajectory_memory.py [--steps 1000] [--n 64]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIG = """
[data]
source = "array"
path = "{path}"
[schedule]
family = "linear"
steps = 1000
[method]
name = "ddpm"
[network]
kind = "unet"
base_channels = 8
channel_mults = [1, 2]
num_res_blocks = 1
attention_resolutions = []
[train]
steps = 5
batch_size = 16
checkpoint_every = 5
preview_every = 0
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
        np.save(tmp / "images.npy", images)
        (tmp / "c.toml").write_text(CONFIG.format(path=tmp / "images.npy"))
        subprocess.run([sys.executable, "-m", "studio", "train", str(tmp / "c.toml"), "--out", str(tmp / "run")], check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})

        import torch

        from studio.engine.events import Finished
        from studio.engine.sampling import sample_job

        torch.set_num_threads(args.threads)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        for event in sample_job(tmp / "run", sampler="ancestral", steps=args.steps, n=args.n, trajectory=tmp / "traj.h5", records=False):
            if isinstance(event, Finished):
                assert event.result["samples"].shape == (args.n, 3, 32, 32)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = (tmp / "traj.h5").stat().st_size / 2**20
        whole = 3 * args.steps * args.n * 3 * 32 * 32 * 2 / 2**20
        print(f"{args.steps} steps x {args.n} x 3x32x32: {seconds:.1f} s; trajectory file {size:.0f} MiB "
              f"(the three float16 arrays whole: {whole:.0f} MiB)")
        print(f"peak RSS {peak:.0f} MiB (before sampling {before:.0f} MiB); limit 1024 MiB: {'OK' if peak < 1024 else 'OVER'}")


if __name__ == "__main__":
    main()

"""Trainer throughput against a bare hand-written torch loop, side by side in one run.

For the 2-D MLP (toy set) and the small UNet (8x8 digits): the same network, batch,
AdamW, data and noise, timed over the same window of steps (after a warm-up), in
interleaved repetitions. Columns (steps/s, medians):

  bare     hand loop: batch, loss, backward, AdamW step
  hand     the same plus the trainer's recipe: gradient norm, one host read of loss and
           norm (the finiteness check), clipping when over the bound, the EMA every
           [train] ema_every steps (the fair comparison: same math)
  trainer  studio.engine.train_job with metrics every 10 steps, Progress events,
           checkpoints (every 200 steps, inside the window), no previews

Target (issue 3): trainer / bare >= 0.97; trainer / hand is printed too.

    .venv/bin/python bench/bench_trainer.py [--reps 5] [--steps 600] [--threads 1] [--clock wall|cpu]

``--clock cpu`` times with the process's CPU time instead of the wall clock: on a
shared machine (other jobs taking the cores) wall-clock steps/s swing by 2x between
repetitions, while CPU seconds per step stay put (one torch thread: CPU time is the
step's own work).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import torch

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter

from studio.core.ema import EMA
from studio.engine.config import build_model, load_data, parse_config, resolve
from studio.engine.events import Progress
from studio.engine.trainer import BatchOrder, train_job, warm_up

CASES = {
    "mlp-2d": {
        "data": {"source": "toy", "name": "swiss_roll", "n": 20000},
        "network": {"kind": "mlp", "hidden": 256, "depth": 4},
        "train": {"batch_size": 512},
    },
    "unet-8x8": {
        "data": {"source": "digits"},
        "network": {"kind": "unet", "base_channels": 16, "channel_mults": [1, 2], "num_res_blocks": 1, "attention_resolutions": []},
        "train": {"batch_size": 64},
    },
}


def config(case: dict, steps: int) -> dict:
    train = {**case["train"], "steps": steps, "warmup": 0, "log_every": 10, "checkpoint_every": 200, "preview_every": 0, "seed": 0, "device": "cpu", "threads": 0}
    return {**case, "schedule": {"family": "linear", "steps": 1000}, "method": {"name": "ddpm"}, "train": train}


def hand_loop(raw: dict, steps: int, skip: int, recipe: bool) -> float:
    cfg = parse_config(raw)
    dataset = load_data(cfg)
    cfg = resolve(cfg, dataset)
    tr = cfg.train
    train_set = dataset.split(cfg.data["held_out"], seed=tr["seed"])[0]
    torch.manual_seed(0)
    method, net = build_model(cfg, dataset.shape, dataset.kind)
    params = [p for p in list(net.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tr["lr"], weight_decay=tr["weight_decay"])
    ema = EMA(net, tr["ema_decay"]) if recipe else None
    order = BatchOrder(len(train_set), tr["batch_size"], tr["seed"])
    g = torch.Generator().manual_seed(0)
    data = train_set.data
    net.train()
    for i in range(steps):
        if i == skip:
            t0 = clock()
        x = data[order.next()]
        loss = method.loss(net, x, g).loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe:
            grads = [p.grad for p in params if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads, foreach=True))
            if not math.isfinite(float(loss.detach()) + norm):
                raise RuntimeError("non-finite loss")
            if norm + 1e-6 > tr["grad_clip"]:
                torch._foreach_mul_(grads, tr["grad_clip"] / (norm + 1e-6))
        opt.step()
        if recipe and (i + 1) % tr["ema_every"] == 0:
            ema.update(net, steps=tr["ema_every"])
    return (steps - skip) / (clock() - t0)


def trainer(raw: dict, steps: int, skip: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = None
        for event in train_job(raw, f"{tmp}/run"):
            if isinstance(event, Progress):
                if event.step == skip:
                    t0 = clock()
                last = (event.step, clock())
        return (last[0] - skip) / (last[1] - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--skip", type=int, default=50, help="warm-up steps left out of the timing (a multiple of 10)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    warm_up()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps, timed from step {args.skip}, {args.reps} interleaved reps, {args.clock} clock")
    print(f"{'case':10s} {'bare':>9s} {'hand':>9s} {'trainer':>9s} {'tr/hand':>8s} {'tr/bare':>8s}  (steps per {args.clock} second, medians; ratio of medians)")
    for name in args.cases:
        raw = config(CASES[name], args.steps)
        runs = {"bare": [], "hand": [], "trainer": []}
        for _ in range(args.reps):
            runs["bare"].append(hand_loop(raw, args.steps, args.skip, recipe=False))
            runs["hand"].append(hand_loop(raw, args.steps, args.skip, recipe=True))
            runs["trainer"].append(trainer(raw, args.steps, args.skip))
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"{name:10s} {med['bare']:9.1f} {med['hand']:9.1f} {med['trainer']:9.1f} {med['trainer'] / med['hand']:8.3f} {med['trainer'] / med['bare']:8.3f}")


if __name__ == "__main__":
    main()

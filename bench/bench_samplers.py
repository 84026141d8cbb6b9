"""Sampler speed, side by side in one run (run by hand; tests never time anything):

  1000-step DDPM ancestral and 50-step DDIM (eta = 0) with the 2-D MLP ("mlp", hidden
  64, depth 2 unless told), batch 1024, one thread, each timed as
    hand      a hand-written plain-torch loop with precomputed float coefficients
    studio    the studio sampler, consuming every StepRecord
    sample()  studio.core.samplers.sample (the same generator, records dropped)
    no-yield  the studio's plan and step function in a bare loop, no generator and no
              StepRecord: studio / no-yield is what yielding the records costs
    diffusers HuggingFace diffusers' DDPMScheduler / DDIMScheduler loop, same network
              (the optional "bench" extra; the column is skipped if it is missing)

Then every registered sampler at 50 grid steps on the same net and batch (median seconds,
network evaluations, seconds per evaluation): what a step of each costs beyond its calls.

Repetitions are interleaved (hand, studio, sample(), no-yield, diffusers, hand, ...) so that load
from other processes hits every column alike; the table shows medians and the ratios
to the hand loop, and the largest difference of each final sample from the hand loop's
(all columns draw the same noise from the same seed, so they agree to rounding; in
float32 an untrained net amplifies rounding over 1000 steps to ~1e-3, in float64 the
studio and hand loops agree to ~1e-10).

    .venv/bin/python bench/bench_samplers.py [--reps 7] [--batch 1024] [--threads 1]
                                             [--hidden 64] [--depth 2]

Quality per NFE (``--quality``, instead of the speed tables): the shipped toy configs
(ddpm_toy, ncsn_toy, vdm_toy) trained through the CLI (``diffusion-studio train NAME
--out RUNS/NAME [--steps N]``; a run already there is reused), then every sampler at 5,
10, 20, 50, 100 and 1000 network evaluations by ``engine.compare.compare_samplers`` (the
same prior draw for every cell, NFE counted on the network), SWD and MMD against the
run's held-out split, averaged over a few seeds (prior draws); beside it the SWD of fresh
draws of the toy set itself (the statistic's floor). The last line per config compares the
best sampler at 20 NFE with 1000-step ancestral's SWD, per seed too.

The verdict (target: some sampler at 20 NFE within 10% of 1000-step ancestral's SWD) is
its own table: ``--verdict-n`` samples a cell against ``--reference-n`` fresh draws, over
``--verdict-seeds`` prior draws (ten by default: one draw's SWD swings by ~30% at 10000
samples, so three seeds could not tell 10% apart), each cell's mean and sd over seeds and
its ratio of means to ancestral's with a bootstrap standard error over the seeds; beside
them the data floor, the SWD of ``FLOOR_DRAWS`` fresh draws of the toy set itself.

    .venv/bin/python bench/bench_samplers.py --quality [--runs runs/bench] [--train-steps N]
                                             [--configs ddpm_toy,ncsn_toy,vdm_toy] [--n 2000]
                                             [--seeds 0,1,2] [--verdict-seeds 0,...,9] [--verdict-only]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import studio.core.methods  # noqa: F401  (registers the methods)
import studio.core.networks  # noqa: F401  (registers the networks)
from studio.core.registry import METHODS, NETWORKS, SAMPLERS
from studio.core.samplers import sample
from studio.core.samplers.base import take_step
from studio.core.schedules import make_schedule

SEED = 0


def hand_ddpm(net, schedule, x_T: torch.Tensor) -> torch.Tensor:
    """Ho et al. Algorithm 2, with every coefficient a Python float computed up front."""
    T, B = schedule.steps, x_T.shape[0]
    lam = schedule.log_snr_steps.tolist()
    inv_sqrt_alpha = (1.0 / schedule.alphas.sqrt()).tolist()
    eps_coef = (schedule.betas / (1.0 - schedule.alpha_bar).sqrt()).tolist()
    std = schedule.posterior_variance.sqrt().tolist()
    g = torch.Generator().manual_seed(SEED)
    x = x_T
    with torch.no_grad():
        for i in range(T - 1, -1, -1):
            eps = net(x, torch.full((B,), lam[i]))
            x = torch.add(x, eps, alpha=-eps_coef[i]).mul_(inv_sqrt_alpha[i])
            if i > 0:
                x.add_(torch.randn(x.shape, generator=g, dtype=x.dtype), alpha=std[i])
    return x


def hand_ddim(net, schedule, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    """DDIM eta = 0 (Song et al. 2021, eq. 12) on the trailing grid, folded into
    x_s = k1 x_t + k2 eps; the last step returns x0_hat."""
    T, B = schedule.steps, x_T.shape[0]
    idx = [round(T * k / steps) - 1 for k in range(steps, 0, -1)]
    abar = schedule.alpha_bar.tolist()
    lam = schedule.log_snr_steps.tolist()
    coefs = []
    for j, i in enumerate(idx):
        a_t, s_t = abar[i] ** 0.5, (1 - abar[i]) ** 0.5
        a_s, s_s = (abar[idx[j + 1]] ** 0.5, (1 - abar[idx[j + 1]]) ** 0.5) if j + 1 < steps else (1.0, 0.0)
        coefs.append((lam[i], a_s / a_t, s_s - a_s * s_t / a_t))
    x = x_T
    with torch.no_grad():
        for lam_i, k1, k2 in coefs:
            eps = net(x, torch.full((B,), lam_i))
            x = torch.add(x * k1, eps, alpha=k2)
    return x


def studio_records(name: str, method, net, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(SEED)
    last = None
    for record in SAMPLERS.get(name)(method, net, tuple(x_T.shape), steps, generator=g, x_init=x_T):
        last = record  # a viewer would copy x_t, x0_hat, eps_hat here
    return last.x_next


def studio_sample(name: str, method, net, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(SEED)
    return sample(name, method, net, tuple(x_T.shape), steps, generator=g, x_init=x_T)


def studio_no_yield(name: str, method, net, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(SEED)
    sampler = SAMPLERS.get(name)
    plan = sampler.plan(method, steps, 1.0, sampler.options({}))
    x = x_T
    with torch.no_grad():
        for step in plan:
            x = take_step(step, net, x, g)[2]
    return x


def diffusers_loop(scheduler, net, schedule, x_T: torch.Tensor, steps: int, **step_kw) -> torch.Tensor:
    B = x_T.shape[0]
    lam = schedule.log_snr_steps.tolist()
    scheduler.set_timesteps(steps)
    g = torch.Generator().manual_seed(SEED)
    x = x_T
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = net(x, torch.full((B,), lam[int(t)]))
            x = scheduler.step(eps, t, x, generator=g, **step_kw).prev_sample
    return x


def make_diffusers(kind: str):
    try:
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError as e:
        print(f"diffusers column skipped: {e} (pip install -e '.[bench]')")
        return None
    common = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=False)
    if kind == "ddpm":
        return DDPMScheduler(**common, variance_type="fixed_small")
    return DDIMScheduler(**common, timestep_spacing="trailing", set_alpha_to_one=True)


def bench(title: str, columns: dict[str, Callable[[], torch.Tensor]], reps: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in columns}
    finals: dict[str, torch.Tensor] = {}
    for k, f in columns.items():  # warm-up, and the outputs to compare
        finals[k] = f()
    for _ in range(reps):
        for k, f in columns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    hand = statistics.median(times["hand"])
    print(f"\n{title}  ({reps} interleaved repetitions, median)")
    print(f"  {'loop':<10} {'median s':>9} {'min s':>8} {'/ hand':>7} {'max |x - hand|':>15}")
    for k in columns:
        med = statistics.median(times[k])
        diff = (finals[k] - finals["hand"]).abs().max().item()
        print(f"  {k:<10} {med:9.4f} {min(times[k]):8.4f} {med / hand:7.3f} {diff:15.2e}")


def bench_every_sampler(method, net, x_T: torch.Tensor, reps: int, steps: int = 50) -> None:
    """Every registered sampler at ``steps`` grid steps: median s, NFE, s per NFE."""
    names = SAMPLERS.names()
    times: dict[str, list[float]] = {k: [] for k in names}
    nfe: dict[str, int] = {}
    for rep in range(reps + 1):  # the first pass warms up and counts
        for name in names:
            opts = {"n_steps_each": 1} if name == "langevin" else {}
            g = torch.Generator().manual_seed(SEED)
            t0 = time.perf_counter()
            last = None
            for last in SAMPLERS.get(name)(method, net, tuple(x_T.shape), steps, generator=g, x_init=x_T, **opts):
                pass
            if rep:
                times[name].append(time.perf_counter() - t0)
            nfe[name] = last.nfe
    print(f"\nevery sampler, {steps} grid steps (langevin: 1 step a level)  ({reps} interleaved repetitions, median)")
    print(f"  {'sampler':<15} {'median s':>9} {'NFE':>6} {'ms / NFE':>9}")
    for name in names:
        med = statistics.median(times[name])
        print(f"  {name:<15} {med:9.4f} {nfe[name]:6d} {1000 * med / nfe[name]:9.3f}")


# ----------------------------------------------------------------------------------
# quality per NFE on the shipped toy configs
# ----------------------------------------------------------------------------------

QUALITY_SAMPLERS = (
    "ancestral", "ddim", "langevin", "euler", "heun", "dpmpp_2m", "euler_maruyama", "pc", "dpmpp_2m_sde", "dpmpp_3m_sde", "rk45",
)
# grids for the ODE solvers: the schedule's whole noise range whatever the step count
# (uniform_t stops at t = 1 / steps, far from the data at 5 NFE)
# (rk45 gets one interval: on uniform_t that interval ends at t = 0.5)
QUALITY_OPTIONS = {
    "euler": {"grid": "karras"}, "heun": {"grid": "karras"}, "dpmpp_2m": {"grid": "uniform_log_snr"},
    "euler_maruyama": {"grid": "karras"}, "dpmpp_2m_sde": {"grid": "uniform_log_snr"},
    "dpmpp_3m_sde": {"grid": "uniform_log_snr"}, "rk45": {"grid": "karras"},
}
BUDGETS = (5, 10, 20, 50, 100, 1000)
# the verdict's cells beyond every sampler with its table options: the third-order ODE
# solver on a grid whose first step jumps to sigma / alpha = 10 (DDPM's linear betas start
# at ~150, where a 20-step log-SNR grid spends a third of its steps), and the 2M SDE with
# less noise
VERDICT_EXTRA = (
    ("dpmpp_3m_sde", {"grid": "uniform_log_snr", "eta": 0.0, "sigma_max": 10.0}),
    ("dpmpp_2m_sde", {"grid": "uniform_log_snr", "eta": 0.75}),
)


def train_config(name: str, runs: Path, steps: int | None) -> Path:
    """Train a shipped config through the CLI (reusing a finished run)."""
    out = runs / name
    if (out / "status.json").is_file() and '"finished"' in (out / "status.json").read_text():
        print(f"{name}: reusing {out}")
        return out
    cmd = [sys.executable, "-m", "studio", "train", name, "--out", str(out)]
    if steps:
        cmd += ["--steps", str(steps)]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"{name}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


FLOOR_DRAWS = 30  # fresh draws of the toy set behind the verdict's data floor (its own sd is ~35%)


def ratio_error(cell: list[float], ref: list[float], draws: int = 2000) -> float:
    """Standard error of ``mean(cell) / mean(ref)`` over the seeds, by the bootstrap: the
    seeds resampled with replacement, each seed's pair kept together (one prior draw
    served both)."""
    g, k = random.Random(0), len(ref)
    if k < 2:
        return math.nan
    ratios = []
    for _ in range(draws):
        pick = [g.randrange(k) for _ in range(k)]
        ratios.append(statistics.fmean(cell[i] for i in pick) / statistics.fmean(ref[i] for i in pick))
    return statistics.stdev(ratios)


def data_floor(cfg, reference: torch.Tensor, n: int, seeds: list[int], first_seed: int) -> list[float]:
    """SWD of fresh draws of the run's toy set (n points, one draw per seed, seeded from
    ``first_seed`` on) against ``reference``: what a perfect sampler would score (the
    statistic's own noise)."""
    from studio.core.data.toy import make_toy
    from studio.core.metrics import sliced_wasserstein

    return [sliced_wasserstein(make_toy(cfg.data["name"], n, seed=first_seed + s).data, reference) for s in seeds]


def quality_table(run: Path, n: int, seeds: list[int]) -> None:
    """The table for one run: every cell's SWD and MMD averaged over ``seeds`` (each seed
    one prior draw, shared by every cell), the spread over seeds of the 20-NFE verdict."""
    from studio.engine.compare import compare_samplers
    from studio.engine.evaluate import held_out_data
    from studio.engine.events import CompareRow, Finished
    from studio.engine.runs import RunDir

    cells: dict[tuple[str, int | None], list[dict]] = {}
    for seed in seeds:
        for event in compare_samplers(run, QUALITY_SAMPLERS, BUDGETS, n=n, seed=seed, options=QUALITY_OPTIONS):
            if isinstance(event, CompareRow):  # each cell as it ends: a long table shows progress
                r = event.row
                print(f"  {run.name} seed {seed} {r['sampler']:<15} budget {r['nfe_budget']} nfe {r['nfe']:>5} "
                      f"SWD {r['sliced_wasserstein']:.4f} MMD {r['mmd']:.4f} ({r['wall_s']:.1f} s)", flush=True)
            if isinstance(event, Finished):
                for r in event.result["rows"]:
                    cells.setdefault((r["sampler"], r["nfe_budget"]), []).append(r)
    mean = lambda rows, key: statistics.fmean(r[key] for r in rows)
    print(f"\n{run.name}: sliced W1 / MMD against held-out data ({n} samples a cell, mean of seeds {seeds})")
    print(f"  {'sampler':<15}" + "".join(f"{f'{b} NFE':>16}" for b in BUDGETS))
    for name in QUALITY_SAMPLERS:
        if name == "rk45":
            ((_, rows),) = [(k, v) for k, v in cells.items() if k[0] == "rk45"]
            print(f"  {'rk45':<15}   SWD {mean(rows, 'sliced_wasserstein'):.4f} MMD {mean(rows, 'mmd'):.4f} "
                  f"at {mean(rows, 'nfe'):.0f} NFE (rtol 1e-5)")
            continue
        out = []
        for b in BUDGETS:
            rows = cells.get((name, b))
            out.append(f"{mean(rows, 'sliced_wasserstein'):7.4f}/{mean(rows, 'mmd'):7.4f}" if rows else f"{'-':>15}")
        print(f"  {name:<15} " + " ".join(out))
    cfg = RunDir(run).require().config
    if cfg.data.get("source") == "toy":
        floor = data_floor(cfg, held_out_data(cfg), n, seeds, first_seed=10_000)
        print(f"  data vs held-out (fresh draws of the toy set, the statistic's floor): SWD {statistics.fmean(floor):.4f}")
    ref = [r["sliced_wasserstein"] for r in cells[("ancestral", 1000)]]
    at20 = {name: [r["sliced_wasserstein"] for r in cells[(name, 20)]] for name in QUALITY_SAMPLERS if (name, 20) in cells}
    best = min((statistics.fmean(v), k) for k, v in at20.items() if all(math.isfinite(x) for x in v))[1]
    ratios = [a / b - 1 for a, b in zip(at20[best], ref)]
    print(f"  best at 20 NFE: {best} SWD {statistics.fmean(at20[best]):.4f} vs ancestral 1000 {statistics.fmean(ref):.4f} "
          f"({100 * (statistics.fmean(at20[best]) / statistics.fmean(ref) - 1):+.1f}%; per seed "
          + ", ".join(f"{100 * x:+.1f}%" for x in ratios) + "; target within 10%)")


def verdict(run: Path, n: int, reference_n: int, seeds: list[int]) -> None:
    """The 20-NFE target with less of the statistic's noise: ``n`` samples a cell (more than the
    table's) against ``reference_n`` fresh draws of the toy set (unseen by training, as the
    held-out split, but many more points), for 1000-step ancestral and every sampler at 20
    NFE, the same prior draw per seed for all; mean and spread over ``seeds``, each cell's
    ratio of means to ancestral's with its bootstrap standard error."""
    from studio.core.data.toy import make_toy
    from studio.core.metrics import sliced_wasserstein
    from studio.engine.compare import cell_steps
    from studio.engine.config import with_data_range
    from studio.engine.runs import RunDir

    r = RunDir(run).require()
    if r.config.data.get("source") != "toy":
        return
    method, net, info = r.load_model("ema")
    reference = make_toy(r.config.data["name"], reference_n, seed=20_000).data
    cells = [("ancestral", 1000, {})] + [
        (name, 20, QUALITY_OPTIONS.get(name, {})) for name in QUALITY_SAMPLERS if name not in ("rk45", "ancestral")
    ] + [(name, 20, opts) for name, opts in VERDICT_EXTRA]
    label = lambda name, o: name + "".join(f" {k} {v}" for k, v in o.items() if k not in QUALITY_OPTIONS.get(name, {}))
    swd: dict[tuple[str, int], list[float]] = {}
    for seed in seeds:
        prior = method.prior_sample((n, *info.shape), generator=torch.Generator().manual_seed(seed))
        for name, budget, o in cells:
            smp = SAMPLERS.get(name)
            opts = smp.options(with_data_range(name, dict(o), info.kind))
            x = sample(smp, method, net, tuple(prior.shape), cell_steps(smp, method, budget, opts),
                       torch.Generator().manual_seed(seed), x_init=prior, **opts)
            swd.setdefault((label(name, o), budget), []).append(sliced_wasserstein(x, reference))
    floor = data_floor(r.config, reference, n, list(range(FLOOR_DRAWS)), first_seed=30_000)
    ref = swd[("ancestral", 1000)]
    ref_mean = statistics.fmean(ref)
    spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"\n{run.name}: the 20-NFE target, {n} samples a cell against {reference_n} fresh draws, seeds {seeds}")
    print(f"  data itself ({FLOOR_DRAWS} fresh draws)     SWD {statistics.fmean(floor):.4f} +- {spread(floor):.4f}")
    print(f"  ancestral 1000 NFE                 SWD {ref_mean:.4f} +- {spread(ref):.4f}")
    for (name, budget), v in sorted(swd.items(), key=lambda kv: statistics.fmean(kv[1])):
        if budget == 20:
            ratio = statistics.fmean(v) / ref_mean - 1
            print(f"  {name:<36} 20 NFE  SWD {statistics.fmean(v):.4f} +- {spread(v):.4f} "
                  f"({100 * ratio:+.1f}% +- {100 * ratio_error(v, ref):.1f}% of ancestral 1000"
                  f"{'; within 10%' if ratio <= 0.10 else ''})")


def main_quality(args: argparse.Namespace) -> None:
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        run = train_config(name.strip(), runs, args.train_steps)
        if not args.verdict_only:
            quality_table(run, args.n, args.seeds)
        verdict(run, args.verdict_n, args.reference_n, args.verdict_seeds)


def seed_list(text: str) -> list[int]:
    """``--seeds`` / ``--verdict-seeds``: comma-separated integers."""
    return [int(s) for s in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="interleaved repetitions of the 1000-step runs (DDIM: 3x)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    # a small MLP by default: the per-step overhead of a loop shows most against a cheap
    # forward pass (the registered default, --hidden 256 --depth 4, takes ~10-20 ms a
    # forward at batch 1024 on one core, which hides every loop's overhead and makes
    # one repetition of the table take minutes)
    ap.add_argument("--hidden", type=int, default=64, help="MLP width")
    ap.add_argument("--depth", type=int, default=2, help="MLP residual blocks")
    ap.add_argument("--quality", action="store_true", help="the quality-per-NFE tables instead of the speed ones")
    ap.add_argument("--runs", default="runs/bench", help="--quality: where the trained runs go")
    ap.add_argument("--train-steps", type=int, help="--quality: override the configs' [train] steps")
    ap.add_argument("--configs", default="ddpm_toy,ncsn_toy,vdm_toy", help="--quality: shipped configs")
    ap.add_argument("--n", type=int, default=2000, help="--quality: samples a cell")
    ap.add_argument("--seeds", type=seed_list, default="0,1,2", help="--quality: prior draws, one table run each, averaged")
    ap.add_argument("--verdict-seeds", type=seed_list, default=",".join(map(str, range(10))),
                    help="--quality: prior draws of the 20-NFE verdict (its cells' SWD swings ~30%% a draw)")
    ap.add_argument("--verdict-n", type=int, default=10000, help="--quality: samples a cell for the 20-NFE verdict")
    ap.add_argument("--reference-n", type=int, default=50000, help="--quality: fresh data points the verdict compares with")
    ap.add_argument("--verdict-only", action="store_true", help="--quality: only the 20-NFE verdict, not the table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quality:
        main_quality(args)
        return

    schedule = make_schedule("linear", steps=1000)
    method = METHODS.get("ddpm")(schedule)
    net = NETWORKS.get("mlp")((2,), hidden=args.hidden, depth=args.depth).eval()
    g = torch.Generator().manual_seed(2)
    for p in net.parameters():  # untrained but not zero (the output layer starts at 0)
        p.requires_grad_(False).add_(0.02 * torch.randn(p.shape, generator=g))
    x_T = torch.randn(args.batch, 2, generator=torch.Generator().manual_seed(1))
    n_params = sum(p.numel() for p in net.parameters())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, "
        f"MLP hidden {args.hidden} depth {args.depth} ({n_params} parameters)"
    )

    for kind, steps, reps in (("ddpm", 1000, args.reps), ("ddim", 50, 3 * args.reps)):
        name = "ancestral" if kind == "ddpm" else "ddim"
        columns = {
            "hand": (lambda: hand_ddpm(net, schedule, x_T)) if kind == "ddpm" else (lambda: hand_ddim(net, schedule, x_T, steps)),
            "studio": lambda: studio_records(name, method, net, x_T, steps),
            "sample()": lambda: studio_sample(name, method, net, x_T, steps),
            "no-yield": lambda: studio_no_yield(name, method, net, x_T, steps),
        }
        scheduler = make_diffusers(kind)
        if scheduler is not None:
            kw = {"eta": 0.0} if kind == "ddim" else {}
            columns["diffusers"] = lambda s=scheduler, kw=kw: diffusers_loop(s, net, schedule, x_T, steps, **kw)
        bench(f"{steps}-step {'DDPM ancestral' if kind == 'ddpm' else 'DDIM eta=0'}", columns, reps)
    bench_every_sampler(method, net, x_T, args.reps)


if __name__ == "__main__":
    main()

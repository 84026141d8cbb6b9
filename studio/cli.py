"""The ``diffusion-studio`` command (docs/DESIGN.md 3): train, sample, schedule, evaluate, gui.

Every bad input is one line on stderr naming the culprit, and a documented exit code.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

OK, FAILURE, USAGE, NAN_STOP, INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = f"""exit codes:
  {OK}    success
  {FAILURE}    runtime failure (a bug, out of memory, a crashed worker)
  {USAGE}    usage, config or data error (unknown key, bad value, missing or corrupt file)
  {NAN_STOP}    training stopped on a non-finite loss (the run stays resumable)
  {INTERRUPTED}  interrupted (Ctrl-C; training saves a checkpoint first)

Without a subcommand the app opens. `torchrun --nproc_per_node N -m studio train CONFIG.toml`
trains data-parallel."""


# the built-in samplers (studio.core.samplers), named here so that --help imports no torch
SAMPLER_NAMES = ("ancestral", "ddim", "langevin", "euler", "heun", "dpmpp_2m", "euler_maruyama", "pc", "dpmpp_2m_sde", "dpmpp_3m_sde", "rk45")


class UsageError(Exception):
    """Bad command-line arguments (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffusion-studio",
        description="Diffusion Studio: train, sample and inspect NCSN, DDPM and VDM models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--plugins", metavar="DIR", help="also load the plugins (*.py) in this folder; installed "
                   "entry points (group studio.plugins) always load")
    sub = p.add_subparsers(dest="command", metavar="{train,sample,schedule,evaluate,compare,gui}")

    t = sub.add_parser("train", help="train a model from a TOML config", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", help="CONFIG.toml, a shipped config by name (ddpm_toy, vdm_digits, ...), "
                   "or, with --resume, a run directory")
    t.add_argument("--out", help="run directory (default: runs/<config name>)")
    t.add_argument("--steps", type=int, help="override [train] steps")
    t.add_argument("--device", choices=["cpu", "cuda", "auto"], help="override [train] device")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")

    s = sub.add_parser("sample", help="sample from a trained run", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("run_dir")
    s.add_argument("--sampler", help=f"a registered sampler: {', '.join(SAMPLER_NAMES)} or a plugin's "
                   "(default: the run's [sample] sampler)")
    s.add_argument("--steps", type=int)
    s.add_argument("--n", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="samples .npz (default: RUN_DIR/samples/samples.npz)")
    s.add_argument("--grid", help="sample grid PNG (2-D points: a plot of the samples over the held-out data)")
    s.add_argument("--strip", help="denoising strip PNG (8 steps of 8 samples)")
    s.add_argument("--trajectory", help="trajectory HDF5, written step by step")
    s.add_argument("--gif", help="animated GIF of the reverse process")
    s.add_argument("--export", action="append", default=[], metavar="NAME=PATH",
                   help="also write PATH with a registered trajectory exporter (e.g. a plugin's svg_strip); repeatable")
    s.add_argument("--checkpoint", default="ema", help="ema (default), net, or a checkpoint file")
    s.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")

    c = sub.add_parser("schedule", help="print or plot a noise schedule", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("name", help="a registered schedule family")
    c.add_argument("params", nargs="*", help="parameters as key=value (TOML values: steps=1000 beta_end=0.02)")
    c.add_argument("--plot", help="PNG with beta_t, alpha_bar_t, SNR and log-SNR")
    c.add_argument("--json", action="store_true", help="print every curve as JSON")
    c.add_argument("--density", action="store_true", help="the noise-level density p(lambda) training visits and its "
                   "share in lambda < -5, -5..5, > 5")
    c.add_argument("--weighting", nargs="?", const="all", metavar="NAMES", help="implied loss weights w(lambda) and "
                   "effective weights p*w of the objectives (comma-separated: eps_mse, x0_mse, v_mse, vdm_elbo, "
                   "ncsn_dsm, edm with the EDM plugin; default all that fit the schedule)")
    c.add_argument("--grid", choices=["uniform_t", "uniform_log_snr", "karras"], help="a sampler grid's lambda "
                   "ticks and its largest lambda jump per step")
    c.add_argument("--grid-steps", type=int, default=50, metavar="N", help="steps of --grid (default 50)")

    e = sub.add_parser("evaluate", help="quality figures of a run", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run_dir")
    e.add_argument("--reference", help="reference samples (.npz with 'samples', or .npy), raw scale")
    e.add_argument("--n", type=int, help="number of samples to draw")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--sampler")
    e.add_argument("--steps", type=int)
    e.add_argument("--likelihood", choices=["ode"], help="also the exact NLL of the probability-flow ODE "
                   "(ode_bits_per_dim*, beside the family's bound bits_per_dim*)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")

    m = sub.add_parser("compare", help="sample quality against network evaluations (NFE), per sampler",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("run_dir")
    m.add_argument("--samplers", default="ancestral,ddim", help="comma-separated registered samplers (default ancestral,ddim)")
    m.add_argument("--nfe", default="5,10,20,50,100,1000", help="comma-separated NFE budgets (default 5,10,20,50,100,1000)")
    m.add_argument("--n", type=int, help="samples per cell (default 1000 points or 256 images)")
    m.add_argument("--seed", type=int, default=0, help="one prior draw and noise stream for every cell")
    m.add_argument("--csv", help="write the table (every column, checkpoint hash, studio version) as CSV")
    m.add_argument("--plot", help="PNG of each quality figure against log10 NFE, one curve per sampler")
    m.add_argument("--trajectories", metavar="DIR", help="write each cell's trajectory HDF5 into DIR")
    m.add_argument("--checkpoint", default="ema", help="ema (default), net, or a checkpoint file")
    m.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")

    g = sub.add_parser("gui", help="open the app (optionally on a run directory)")
    g.add_argument("run_dir", nargs="?")
    return p


# -------------------------------------------------------------------------------------
# train
# -------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .engine import distributed
    from .engine.control import JobControl
    from .engine.events import CheckpointSaved, Failed, Finished, Log, Progress, Started
    from .engine.progress import ProgressBar
    from .engine.trainer import train_job

    src = Path(args.config)
    if args.resume:
        out = Path(args.out) if args.out else (src if src.is_dir() else None)
        if out is None:
            raise UsageError("train --resume needs the run directory: give it as CONFIG or with --out")
        config = None
    else:
        if src.is_dir():
            raise UsageError(f"{src} is a directory; pass a CONFIG.toml (or add --resume to continue that run)")
        if not src.exists() and src.suffix in ("", ".toml") and len(src.parts) == 1:
            from .engine.presets import preset_path

            src = preset_path(src.name)  # a shipped config by name: `train ddpm_toy`
        out = Path(args.out) if args.out else Path("runs") / src.stem
        config = src
    control = JobControl()
    _on_sigint(control)
    main = distributed.from_env().is_main
    bar = None
    code = FAILURE
    for event in train_job(config, out, control=control, resume=args.resume, steps=args.steps, device=args.device):
        if isinstance(event, Started):
            bar = ProgressBar(event.total_steps, "train", start=event.start_step) if main else None
            if main:
                print(f"training into {event.run_dir} ({event.total_steps} steps)", file=sys.stderr)
        elif isinstance(event, Progress) and bar is not None:
            bar.update(event.step, f"loss {event.loss_smooth:.4g}")
        elif isinstance(event, Log) and main and event.level != "info":
            print(f"{event.level}: {event.message}", file=sys.stderr)
        elif isinstance(event, CheckpointSaved):
            pass
        elif isinstance(event, Failed):
            if bar:
                bar.close()
            print(f"error: {event.message}", file=sys.stderr)
            code = NAN_STOP if event.nan else FAILURE
        elif isinstance(event, Finished):
            if bar:
                bar.close()
            if event.result.get("cancelled"):
                print(f"interrupted at step {event.step}; checkpoint {event.result.get('checkpoint')}", file=sys.stderr)
                code = INTERRUPTED
            else:
                if main:
                    print(f"finished step {event.step}; run directory {event.run_dir}; checkpoint {event.result.get('checkpoint')}")
                code = OK
    return code


def _on_sigint(control: Any) -> None:
    """First Ctrl-C: stop at the next step, save and exit 130; a second one kills."""

    def handler(signum: int, frame: Any) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        control.cancel()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests calling main in a thread)
        pass


# -------------------------------------------------------------------------------------
# sample
# -------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .engine import export
    from .engine.control import JobControl
    from .engine.events import Finished, SampleStep, Started
    from .engine.progress import ProgressBar
    from .engine.runs import RunDir
    from .engine.sampling import sample_job

    run = RunDir(args.run_dir).require()
    info = run.data_info()
    want_frames = bool(args.gif or args.strip)
    exports = trajectory_exports(args.export)
    trajectory = args.trajectory or (run.samples_dir / ".export_trajectory.h5" if exports else None)
    control = JobControl()
    _on_sigint(control)
    bar, total, frames, strip = None, 0, [], []
    gif_at: set[int] = set()
    strip_at: set[int] = set()
    bounds = None
    if info.kind == "points":
        lo, hi = np.asarray(info.shift - 3 * info.scale), np.asarray(info.shift + 3 * info.scale)
        bounds = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    result: dict[str, Any] = {}
    job = sample_job(
        run.path, sampler=args.sampler, steps=args.steps, n=args.n, seed=args.seed, checkpoint=args.checkpoint if args.checkpoint in ("ema", "net") else "ema",
        checkpoint_path=None if args.checkpoint in ("ema", "net") else args.checkpoint,
        trajectory=trajectory, control=control, records=want_frames, device=args.device,
    )
    for event in job:
        if isinstance(event, Started):
            total = event.total_steps
            bar = ProgressBar(total, "sample")
            gif_at = set(np.linspace(0, total - 1, min(total, 60)).round().astype(int).tolist())
            strip_at = set(np.linspace(0, total - 1, min(total, 8)).round().astype(int).tolist())
        elif isinstance(event, SampleStep):
            bar.update(event.index + 1)
            if args.gif and event.index in gif_at:
                frames.append(_frame(info, event.x_t[:64], bounds))
            if args.strip and event.index in strip_at and info.kind == "images":
                strip.append(event.x_t[:8])
        elif isinstance(event, Finished):
            if bar:
                if bar.done < total:
                    bar.update(total)
                bar.close()
            if event.result.get("cancelled"):
                print(f"interrupted at step {event.step}", file=sys.stderr)
                return INTERRUPTED
            result = event.result
    samples = result["samples"]
    meta = {"run": str(run.path), "sampler": result["sampler"], "steps": result["steps"], "seed": result["seed"], "config": run.config.to_toml()}
    out = Path(args.out) if args.out else run.samples_dir / "samples.npz"
    export.save_samples_npz(samples, out)
    written = [str(out)]
    if args.grid:
        if info.kind == "images":
            export.save_grid_png(result["images"], args.grid, scale=max(1, 64 // max(info.shape[1:])), metadata=meta)
        else:
            from .engine.evaluate import held_out_split

            held = held_out_split(run.config)  # the plot draws the samples over it, in grey
            title = f"{result['sampler']}, {result['steps']} steps, seed {result['seed']}"
            export.save_points_png(samples[:, :2], args.grid, reference=held.to_raw(held.data)[:, :2], title=title, metadata=meta)
        written.append(args.grid)
    if args.strip:
        if info.kind != "images":
            print("warning: --strip is for images; skipped (use --gif for points)", file=sys.stderr)
        else:
            strip.append(samples[:8])
            export.save_strip_png(strip, args.strip, scale=max(1, 32 // max(info.shape[1:])), metadata=meta)
            written.append(args.strip)
    if args.gif:
        frames.append(_frame(info, samples[:64], bounds))
        export.save_gif(frames, args.gif, duration_ms=60, scale=max(1, 128 // max(frames[-1].shape[:2])))
        written.append(args.gif)
    if args.trajectory:
        written.append(args.trajectory)
    if exports:
        written += write_exports(exports, trajectory)
        if not args.trajectory:
            Path(trajectory).unlink(missing_ok=True)
    print("wrote " + ", ".join(written))
    return OK


def trajectory_exports(items: list[str]) -> list[tuple[str, str]]:
    """``NAME=PATH`` pairs naming exporters registered with meta ``input="trajectory"``
    (engine.export: called as ``exporter(TrajectoryReader, path)``)."""
    from .core.registry import EXPORTERS

    allowed = [n for n in EXPORTERS.names() if EXPORTERS.entry(n).meta.get("input") == "trajectory"]
    pairs = []
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise UsageError(f"--export {item!r}: expected NAME=PATH, e.g. svg_strip=strip.svg")
        if name not in allowed:
            raise UsageError(f"--export {name!r}: not a trajectory exporter; allowed: {', '.join(allowed) or 'none registered'}")
        pairs.append((name, path))
    return pairs


def write_exports(exports: list[tuple[str, str]], trajectory: Any) -> list[str]:
    from .core.registry import EXPORTERS
    from .engine.trajectory import TrajectoryReader

    with TrajectoryReader(trajectory) as reader:
        return [str(EXPORTERS.get(name)(reader, path)) for name, path in exports]


def _frame(info: Any, x_raw: Any, bounds: Any):
    from .engine import export

    if info.kind == "images":
        return export.make_grid(export.as_uint8_nhwc(x_raw))
    return export.scatter_image(x_raw, size=256, bounds=bounds)


# -------------------------------------------------------------------------------------
# schedule
# -------------------------------------------------------------------------------------


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"schedule parameter {item!r}: expected key=value, e.g. steps=1000")
        try:
            params[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = value  # a bare word is a string
    return params


def cmd_schedule(args: argparse.Namespace) -> int:
    import numpy as np

    from .core.schedules import make_schedule

    sched = make_schedule(args.name, **parse_params(args.params))
    curves = {k: v.double().numpy() for k, v in sched.curves().items()}
    figures = lambda_figures(sched, args)
    if args.json:
        print(json.dumps({"schedule": sched.to_dict(), "curves": {k: v.tolist() for k, v in curves.items()}, **figures}))
    else:
        print(summary(sched, curves))
        if figures:
            from .engine.schedule_report import summary_lines

            print("\n".join(summary_lines(figures)))
    if args.plot:
        from .engine.plots import save_panels

        panels = [("log-SNR  lambda_t", curves["log_snr"]), ("alpha_bar_t", curves["alpha_bar"]), ("log10 SNR", curves["log_snr"] / math.log(10))]
        if "beta" in curves:
            panels.insert(0, ("beta_t", curves["beta"]))
        else:
            panels.insert(0, ("sigma_t", curves["sigma"]))
        params = ", ".join(f"{k}={v}" for k, v in sched.params().items() if k != "points")
        if figures:  # the log-SNR figures, each against lambda
            from .engine.plots import save_figure
            from .engine.schedule_report import figure_panels

            panels = [{"title": name, "curves": [("", curves["t"], y)]} for name, y in panels] + figure_panels(figures)
            save_figure(args.plot, panels, title=f"{args.name}: {params}")
        else:
            save_panels(args.plot, curves["t"], panels, title=f"{args.name}: {params}")
        print(f"wrote {args.plot}", file=sys.stderr)
    return OK


def lambda_figures(sched: Any, args: argparse.Namespace) -> dict[str, Any]:
    """--density, --weighting and --grid as data (engine.schedule_report)."""
    if not (args.density or args.weighting or args.grid):
        return {}
    from .engine.schedule_report import parse_weightings, schedule_figures

    if args.grid_steps < 1:
        raise UsageError(f"--grid-steps {args.grid_steps}: must be >= 1")
    names = parse_weightings(args.weighting, sched) if args.weighting else []
    return schedule_figures(sched, density=args.density, weighting_names=names, grid=args.grid, grid_steps=args.grid_steps)


def summary(sched: Any, curves: dict[str, Any]) -> str:
    import numpy as np

    lines = [f"schedule {sched.family}: " + ", ".join(f"{k}={v}" for k, v in sched.params().items())]
    lam = curves["log_snr"]
    lines.append(f"log-SNR from {lam[0]:.4f} to {lam[-1]:.4f} ({'variance preserving' if sched.variance_preserving else 'variance exploding'})")
    if sched.variance_preserving:
        abar = float(curves["alpha_bar"][-1])
        lines.append(f"q(x_1 | x_0) = N({math.sqrt(abar):.7f} x_0, {1 - abar:.7f} I)  terminal SNR {math.exp(lam[-1]):.4g}")
    else:
        lines.append(f"sigma from {curves['sigma'][0]:.4g} to {curves['sigma'][-1]:.4g}")
    has_beta = "beta" in curves
    header = f"{'t':>8} {'beta_t':>12} {'alpha_bar_t':>12} {'SNR':>12} {'log-SNR':>10}"
    lines.append(header)
    n = len(curves["t"])
    for i in sorted(set(np.linspace(0, n - 1, 11).round().astype(int).tolist())):
        beta = f"{curves['beta'][i]:12.6g}" if has_beta else f"{'-':>12}"
        lines.append(f"{curves['t'][i]:8.4f} {beta} {curves['alpha_bar'][i]:12.6g} {curves['snr'][i]:12.4g} {lam[i]:10.4f}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------
# evaluate, gui
# -------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .engine.evaluate import evaluate

    figures = evaluate(args.run_dir, reference=args.reference, n=args.n, seed=args.seed, sampler=args.sampler, steps=args.steps,
                       likelihood=args.likelihood)
    if args.json:
        print(json.dumps(figures))
        return OK
    for key, value in figures.items():
        print(f"{key:26s} {value:.6g}" if isinstance(value, float) else f"{key:26s} {value}")
    return OK


def _int_list(option: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated integers, e.g. 5,10,20,50") from None


def cmd_compare(args: argparse.Namespace) -> int:
    from .engine import compare
    from .engine.control import JobControl
    from .engine.events import CompareRow, Finished, Started
    from .engine.progress import ProgressBar

    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    named = args.checkpoint in ("ema", "net")
    control = JobControl()
    _on_sigint(control)
    job = compare.compare_samplers(
        args.run_dir, samplers, _int_list("--nfe", args.nfe), n=args.n, seed=args.seed,
        checkpoint=args.checkpoint if named else "ema", checkpoint_path=None if named else args.checkpoint,
        trajectory_dir=args.trajectories, control=control, device=args.device,
    )
    bar, rows, scores, cancelled = None, [], None, False
    for event in job:
        if isinstance(event, Started):
            bar = ProgressBar(event.total_steps, "compare")
        elif isinstance(event, CompareRow):
            bar.update(event.cell + 1, f"{event.row['sampler']} nfe {event.row['nfe']}")
            if scores is None:
                scores = compare.score_columns([event.row])
                print(compare.format_header(scores), flush=True)
            print(compare.format_row(event.row, scores), flush=True)
            rows.append(event.row)
        elif isinstance(event, Finished):
            bar.close()
            cancelled = event.result["cancelled"]
    if rows:
        print(f"checkpoint {rows[0]['checkpoint']} sha256 {rows[0]['checkpoint_sha256'][:16]}; n {rows[0]['n']}, seed {rows[0]['seed']}; "
              f"studio {rows[0]['studio_version']}", file=sys.stderr)
    written = []
    if args.csv and rows:
        written.append(str(compare.write_csv(rows, args.csv)))
    if args.plot and rows:
        written.append(str(compare.save_plot(rows, args.plot, title=f"{Path(args.run_dir).name}: quality against NFE")))
    if written:
        print("wrote " + ", ".join(written), file=sys.stderr)
    if cancelled:
        print(f"interrupted after {len(rows)} cells", file=sys.stderr)
        return INTERRUPTED
    return OK


def cmd_gui(args: argparse.Namespace) -> int:
    return open_app([args.run_dir] if args.run_dir else [])


def open_app(argv: list[str]) -> int:
    """The app, after the pre-flight check (a missing screen or system library is one
    line and exit 2, before torch and Qt are imported)."""
    from . import preflight

    if preflight.report():
        return USAGE
    import studio.gui.app  # lazily: the CLI and engine never need Qt

    return int(studio.gui.app.main(argv) or 0)


def load_cli_plugins(folder: str | None) -> None:
    """Installed entry points and the folder named on the command line, nothing else
    (a plugin is code: it runs only where the user put it). A broken plugin is a
    warning, not a failure: the registered names work without it."""
    from .plugins import load_plugins

    report = load_plugins(folder)
    for source, message in report.errors:
        print(f"warning: plugin {source}: {message}", file=sys.stderr)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "schedule": cmd_schedule, "evaluate": cmd_evaluate, "compare": cmd_compare, "gui": cmd_gui}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        return open_app([])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own one-line message; --help exits 0
        return int(exc.code or 0)
    from .core.errors import StudioError

    if args.command is None:
        parser.print_usage(sys.stderr)
        return USAGE
    load_cli_plugins(args.plugins)
    try:
        return COMMANDS[args.command](args)
    except (StudioError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except OSError as exc:  # a file we were told to write cannot be written, a disk is full
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE

"""TensorBoard beside a run's own files (``[train] tensorboard = true``).

The trainer's events are copied, as they pass, into ``RUN/tensorboard/`` through
``torch.utils.tensorboard``: the scalars of every ``Progress`` (loss, smoothed loss,
gradient norm, learning rate, throughput, memory figures), the loss-by-noise-level pairs
as a histogram, the preview images, and the config as text. ``metrics.jsonl`` stays the
source of truth (the app and ``RunDir`` read only it); TensorBoard is for users who watch
everything else they train there. The ``tensorboard`` package is an optional extra
(``pip install diffusion-studio[tensorboard]``); asking for it without it installed is a
``ConfigError`` before the run writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..core.errors import ConfigError
from .events import Event, Failed, Finished, Preview, Progress, Started

FOLDER = "tensorboard"  # RUN/tensorboard/
LEVEL_BINS = 32  # log-SNR bins of the loss-by-noise-level histogram


def require_tensorboard() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or a ConfigError saying how to get it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            "[train] tensorboard = true needs the tensorboard package "
            f"(pip install 'diffusion-studio[tensorboard]' or pip install tensorboard): {exc}"
        ) from None
    return SummaryWriter


def loss_by_level_histogram(log_snr: np.ndarray, loss: np.ndarray, bins: int = LEVEL_BINS) -> dict[str, Any] | None:
    """The (log-SNR, per-sample loss) pairs as TensorBoard raw-histogram fields: buckets
    are equal log-SNR bins over the pairs' range, each bucket's height the mean loss of
    the pairs in it (0 where none fell), so the histogram's shape is the loss across noise
    levels, the figure behind the loss weighting of Kingma et al. 2023 (VDM++, fig. 2)."""
    from .run_index import loss_by_level

    lam = np.asarray(log_snr, dtype=np.float64)
    lam = lam[np.isfinite(lam) & np.isfinite(np.asarray(loss, dtype=np.float64))]
    if lam.size == 0:
        return None
    lo, hi = float(lam.min()), float(lam.max())
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    means = loss_by_level(log_snr, loss, edges)[1]
    centres = (edges[:-1] + edges[1:]) / 2
    return {
        "min": lo,
        "max": hi,
        "num": float(means.sum()),
        "sum": float((means * centres).sum()),
        "sum_squares": float((means * centres**2).sum()),
        "bucket_limits": edges[1:].tolist(),
        "bucket_counts": means.tolist(),
    }


def preview_image(event: Preview) -> np.ndarray | None:
    """uint8 (H, W, 3) of a preview: the image grid, or the points drawn as a scatter."""
    from .export import make_grid, scatter_image

    if event.images is not None and len(event.images):
        grid = make_grid(event.images)
        return np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid
    if event.points is not None and len(event.points):
        return scatter_image(event.points, size=384)
    return None


def _config_text(config: dict[str, Any]) -> str:
    """The run's config as TOML, indented so that TensorBoard's markdown shows it as code."""
    from .config import SECTIONS, Config

    toml = Config(**{s: dict(config.get(s) or {}) for s in SECTIONS}).to_toml()
    return "\n".join("    " + line for line in toml.splitlines())


class TensorBoardSink:
    """Writes the events of one training run to ``folder``; opened by the ``Started``
    event (a resumed run purges what an earlier process logged past its checkpoint),
    closed by ``Finished`` / ``Failed`` or :meth:`close`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._SummaryWriter = require_tensorboard()
        self.writer = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.close()
            # a resumed run continues after its checkpoint's step: whatever an earlier
            # process logged past it (killed before its next checkpoint) is dropped
            start = int(getattr(event, "start_step", 0) or 0)
            self.writer = self._SummaryWriter(str(self.folder), purge_step=start + 1 if start > 0 else None, flush_secs=10)
            self.writer.add_text("config", _config_text(event.config), start)
            return
        w = self.writer
        if w is None:
            return
        if isinstance(event, Progress):
            step = event.step
            for tag, value in (
                ("train/loss", event.loss),
                ("train/loss_smooth", event.loss_smooth),
                ("train/grad_norm", event.grad_norm),
                ("train/lr", event.lr),
                ("train/samples_per_s", event.samples_per_s),
            ):
                if value is not None and np.isfinite(value):
                    w.add_scalar(tag, float(value), step)
            for key, value in (event.memory or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    w.add_scalar(f"memory/{key}", float(value), step)
            hist = loss_by_level_histogram(event.level_log_snr, event.level_loss)
            if hist is not None:
                w.add_histogram_raw("train/loss_by_log_snr", global_step=step, **hist)
                w.add_histogram("train/log_snr_drawn", np.asarray(event.level_log_snr, dtype=np.float64), step)
        elif isinstance(event, Preview):
            image = preview_image(event)
            if image is not None:
                w.add_image("preview", image, event.step, dataformats="HWC")
        elif isinstance(event, (Finished, Failed)):
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def with_tensorboard(events: Iterator[Event], run_dir: str | Path) -> Iterator[Event]:
    """``events`` unchanged, each also written to ``run_dir/tensorboard``. Raises the
    ConfigError of :func:`require_tensorboard` here, at the call, before any event."""
    sink = TensorBoardSink(Path(run_dir) / FOLDER)
    return _tee(events, sink)


def _tee(events: Iterator[Event], sink: TensorBoardSink) -> Iterator[Event]:
    try:
        for event in events:
            sink(event)
            yield event
    finally:
        # closing us closes the job the way ``yield from`` would (it saves and says so)
        close = getattr(events, "close", None)
        if close is not None:
            close()
        sink.close()

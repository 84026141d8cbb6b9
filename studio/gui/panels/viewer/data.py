"""A trajectory file as the reverse-process viewer reads it (no Qt).

The viewer never holds a trajectory in memory: it reads one step's chunks when it shows
that step (``step(i)``), and keeps only what the timeline plots need, per step: the
time, log-SNR and sigma, three statistics, and the paths of a few particles (2-D data).
``update()`` reads the steps written since the last call, so the same object follows a
file that a sampling job is still writing (SWMR) and one opened after the fact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from studio.engine.config import parse_config
from studio.engine.trajectory import TrajectoryReader

N_PARTICLES = 4  # paths drawn on 2-D data (more turn into a tangle)
STATS = ("norm_x", "norm_score", "delta")
STAT_TITLES = {
    "norm_x": "‖x_t‖ (RMS)",
    "norm_score": "‖score‖ (RMS)",
    "delta": "‖x_t − x_t−1‖ (RMS)",
}


def rms(a: np.ndarray) -> float:
    """Mean over samples of each sample's root-mean-square (a norm that does not grow
    with the number of pixels or dimensions)."""
    a = np.asarray(a, dtype=np.float32).reshape(len(a), -1)
    return float(np.sqrt(np.mean(a * a, axis=1)).mean())


def score_from_eps(eps: np.ndarray, sigma) -> np.ndarray:
    """score = -eps / sigma (docs/DESIGN.md 1), in the model's units; ``sigma`` a number
    or an array that broadcasts against ``eps`` (one per step)."""
    return -np.asarray(eps, dtype=np.float32) / np.maximum(np.asarray(sigma, dtype=np.float32), 1e-12)


class TrajectoryData:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.reader = TrajectoryReader(self.path)
        attrs = self.reader.attrs
        self.kind = str(attrs.get("data_kind", "images"))
        self.sample_shape = tuple(int(s) for s in attrs.get("sample_shape", ()))
        self.total = self.reader.steps
        self.settings = {k: attrs.get(k) for k in ("sampler", "steps", "n", "seed", "checkpoint", "run_dir")}
        raw_options = attrs.get("options", "{}")
        self.settings["options"] = json.loads(raw_options) if isinstance(raw_options, str) else {}
        self.count = 0  # steps read so far
        self.per_step: dict[str, np.ndarray] = {k: np.zeros(0) for k in ("index", "t", "log_snr", "sigma")}
        self.stats: dict[str, list[float]] = {k: [] for k in STATS}
        self.paths: list[np.ndarray] = []  # (N_PARTICLES, 2) per step, 2-D data only
        self._prev: np.ndarray | None = None

    # --- growth --------------------------------------------------------------------
    def update(self, limit: int | None = None) -> int:
        """Read what was written since the last call (at most ``limit`` steps, so a timer
        tick stays short when a fast sampler races ahead); returns how many."""
        n = len(self.reader)  # refreshes the SWMR view
        if n <= self.count:
            return 0
        if limit is not None:
            n = min(n, self.count + int(limit))
        self.per_step = self.reader.per_step()
        # the new steps in one read per array: h5py serialises every thread behind one
        # lock (docs/PITFALLS.md), and two calls a step queued the GUI behind the writer
        block = self.reader.arrays(slice(self.count, n), ("x_t", "eps_hat"))
        for i in range(self.count, n):
            x = block["x_t"][i - self.count].astype(np.float32)
            self.stats["norm_x"].append(rms(x))
            eps = block["eps_hat"][i - self.count] if "eps_hat" in block else None
            sigma = float(self.per_step["sigma"][i])
            self.stats["norm_score"].append(rms(score_from_eps(eps, sigma)) if eps is not None else float("nan"))
            self.stats["delta"].append(rms(x - self._prev) if self._prev is not None else float("nan"))
            self._prev = x
            if self.kind == "points":
                self.paths.append(x[:N_PARTICLES, :2].copy())
        new, self.count = n - self.count, n
        return new

    @property
    def complete(self) -> bool:
        return self.count >= self.total

    # --- one step --------------------------------------------------------------------
    def step(self, i: int) -> dict[str, Any]:
        """Step ``i`` (< ``count``): the float16 arrays as stored, and its numbers."""
        out: dict[str, Any] = self.reader.arrays(i)
        for key, values in self.per_step.items():
            out[key] = values[i].item()
        return out

    def samples(self) -> np.ndarray | None:
        """The final states (raw scale), once sampling finished."""
        return self.reader.samples() if self.complete else None

    def states(self, indices: list[int], name: str = "x_t") -> list[np.ndarray]:
        return [self.reader.arrays(i, (name,))[name] for i in indices]

    # --- what produced it ---------------------------------------------------------------
    def config_toml(self) -> str:
        cfg = self.reader.config
        return parse_config(cfg).to_toml() if cfg else ""

    def metadata(self) -> dict[str, Any]:
        """PNG text chunks that make a grid reproducible: the run's config and the
        sampling settings (sampler, options, steps, n, seed, weights)."""
        meta = {"config": self.config_toml()}
        meta.update({k: v for k, v in self.settings.items() if v is not None})
        meta["software"] = "Diffusion Studio"
        return {k: v if isinstance(v, str) else json.dumps(v, default=_plain) for k, v in meta.items()}

    def close(self) -> None:
        self.reader.close()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)

"""Exports from the viewer: sample grid PNG, denoising strip PNG, GIF of the reverse
process, the trajectory HDF5 and the samples NPZ. The writers are ``engine.export``'s;
this module picks what to write from a trajectory file and puts the run's config and
the sampling settings (sampler, options, steps, seed, weights) into the PNG text
chunks, so a grid can be reproduced. 2-D data gets scatter images instead of grids."""

from __future__ import annotations

from pathlib import Path
import h5py
import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLineEdit, QPushButton, QSpinBox, QWidget

from studio.core.errors import DataError
from studio.core.registry import EXPORTERS
from studio.engine.atomic import atomic_path
from studio.engine.trajectory import TrajectoryReader
from studio.engine.export import (
    make_grid,
    save_gif,
    save_grid_png,
    save_points_png,
    save_samples_npz,
    save_strip_png,
    scatter_image,
)

from .step_views import points_bounds
from .data import TrajectoryData

FORMATS = {  # key: (label, suffix, file filter)
    "grid_png": ("Sample grid PNG", ".png", "PNG image (*.png)"),
    "strip_png": ("Denoising strip PNG", ".png", "PNG image (*.png)"),
    "gif": ("GIF of the reverse process", ".gif", "GIF animation (*.gif)"),
    "trajectory_h5": ("Trajectory HDF5", ".h5", "HDF5 (*.h5 *.hdf5)"),
    "samples_npz": ("Samples NPZ", ".npz", "NumPy archive (*.npz)"),
}
SCATTER_SIZE = 384  # pixels of one 2-D frame


def trajectory_exporters() -> dict[str, tuple[str, str, str]]:
    """Registered exporters of a whole trajectory (meta ``input="trajectory"``, e.g. the
    example plugin's svg_strip), as rows like FORMATS'."""
    rows = {}
    for entry in EXPORTERS.entries():
        if entry.meta.get("input") == "trajectory":
            suffix = str(entry.meta.get("suffix", ""))
            rows[entry.name] = (entry.description or entry.name, suffix, f"{suffix[1:].upper()} (*{suffix})" if suffix else "All files (*)")
    return rows


def even_steps(count: int, k: int) -> list[int]:
    """``k`` step indices spread evenly from the first to the last (both included)."""
    k = max(1, min(int(k), count))
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, k)})


def parse_steps(text: str, count: int) -> list[int]:
    """'0, 50, 100, end' or '8' (that many, evenly spaced) -> step indices."""
    text = text.strip()
    if not text:
        raise DataError("strip steps: give step numbers (e.g. '0, 50, end') or a count (e.g. '8')")
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if len(parts) == 1 and parts[0].isdigit() and "," not in text:
        return even_steps(count, int(parts[0]))
    out = []
    for p in parts:
        if p.lower() in ("end", "last"):
            out.append(count - 1)
            continue
        try:
            i = int(p)
        except ValueError:
            raise DataError(f"strip steps: {p!r} is not a step number (0 to {count - 1}) or 'end'") from None
        if not 0 <= i < count:
            raise DataError(f"strip steps: step {i} is outside 0 to {count - 1}")
        out.append(i)
    return out


def _need_samples(data: TrajectoryData) -> np.ndarray:
    samples = data.samples()
    if samples is None:
        raise DataError(f"trajectory {data.path.name} is not finished ({data.count} of {data.total} steps): no samples yet")
    return samples


def _frames(data: TrajectoryData, states: list[np.ndarray], rows: int | None, padding: int, bounds=None) -> list[np.ndarray]:
    """uint8 (H, W, C) mosaics of the given states: image grids, or scatter plots for 2-D
    data on one fixed view."""
    if data.kind == "points":
        bounds = bounds or points_bounds(*states)
        return [scatter_image(s[:, :2], SCATTER_SIZE, bounds) for s in states]
    return [make_grid(s, rows, padding) for s in states]


def export_grid(data: TrajectoryData, path: Path, rows: int | None = None, padding: int = 2, scale: int = 1) -> Path:
    """Images: the grid of samples. 2-D points: a plot with axes of the samples over the
    run's held-out data in grey (engine.export.save_points_png), 1200 px."""
    samples = _need_samples(data)
    if data.kind == "points":
        meta = data.metadata()
        title = ", ".join(f"{k} {meta[k]}" for k in ("sampler", "steps", "seed") if meta.get(k) is not None)
        return save_points_png(samples[:, :2], path, reference=held_out_points(data), title=title, metadata=meta)
    return save_grid_png(samples, path, rows=rows, padding=padding, scale=scale, metadata=data.metadata())


def held_out_points(data: TrajectoryData) -> np.ndarray | None:
    """The held-out data of the run the trajectory came from, in raw scale (None when its
    config cannot rebuild it, e.g. a data file that has moved)."""
    import tomllib

    from studio.core.errors import StudioError
    from studio.engine.config import parse_config
    from studio.engine.evaluate import held_out_split

    try:
        held = held_out_split(parse_config(tomllib.loads(data.config_toml())))
    except (StudioError, OSError, tomllib.TOMLDecodeError):
        return None
    return held.to_raw(held.data)[:, :2] if held.kind == "points" else None


def export_strip(data: TrajectoryData, path: Path, steps: list[int], n_samples: int = 8, padding: int = 2, scale: int = 1) -> Path:
    """A row per sample, a column per chosen step (then the final samples when done);
    2-D data: one scatter per chosen step, side by side."""
    states = [s[:n_samples] if data.kind == "images" else s for s in data.states(steps)]
    samples = data.samples()
    if samples is not None:
        states.append(samples[:n_samples] if data.kind == "images" else samples)
    meta = {**data.metadata(), "strip_steps": ", ".join(map(str, steps))}
    if data.kind == "points":
        frames = _frames(data, states, None, padding)
        return save_grid_png(np.stack(frames), path, rows=1, padding=padding, scale=scale, metadata=meta)
    return save_strip_png(states, path, padding=padding, scale=scale, metadata=meta)


def export_gif(data: TrajectoryData, path: Path, frames: int = 50, duration_ms: int = 60, rows: int | None = None,
               padding: int = 2, scale: int = 1) -> Path:
    """``frames`` steps spread over the trajectory, then the final samples when done."""
    steps = even_steps(data.count, frames)
    states = data.states(steps)
    samples = data.samples()
    if samples is not None:
        states.append(samples)
    if data.kind == "images":
        states = [s[:64] for s in states]  # a GIF of every sample of a big run is unwatchable
    return save_gif(_frames(data, states, rows, padding), path, duration_ms=duration_ms, scale=scale)


def export_trajectory(data: TrajectoryData, path: Path) -> Path:
    if Path(path).resolve() == data.path.resolve():
        raise DataError(f"{path} is the trajectory itself; pick another file name")
    # objects copied into a fresh file, not the bytes: while this process still has the
    # trajectory open (the viewer does), HDF5 keeps its superblock marked "open for
    # write", and a byte copy would carry that mark into a file nobody could open
    with h5py.File(data.path, "r", libver="latest", swmr=True) as src, atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as dst:
            for name in src:
                src.copy(src[name], dst, name=name)
            dst.attrs.update(src.attrs)
    return Path(path)


def export_samples(data: TrajectoryData, path: Path) -> Path:
    s = data.settings
    return save_samples_npz(_need_samples(data), path, seed=np.int64(s.get("seed") or 0), steps=np.int64(s.get("steps") or 0))


class ExportForm(QWidget):
    """Pick a format and its options; ``export_to(kind, path)`` writes (the dialog
    calls it). ``exported(path)`` / ``failed(message)`` report the outcome."""

    exported = Signal(str)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data: TrajectoryData | None = None
        self.busy = False  # a job still writes the trajectory
        form = self.form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.kind = QComboBox()
        self.formats: dict[str, tuple[str, str, str]] = {}
        self.fill_formats()
        self.rows = QSpinBox()
        self.rows.setRange(0, 256)
        self.rows.setSpecialValueText("square")
        self.padding = QSpinBox()
        self.padding.setRange(0, 32)
        self.padding.setValue(2)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setSuffix("×")
        self.strip_steps = QLineEdit("8")
        self.strip_steps.setToolTip("Step numbers ('0, 50, 100, end') or how many, evenly spaced ('8')")
        self.strip_samples = QSpinBox()
        self.strip_samples.setRange(1, 64)
        self.strip_samples.setValue(8)
        self.gif_frames = QSpinBox()
        self.gif_frames.setRange(2, 2000)
        self.gif_frames.setValue(50)
        self.gif_ms = QSpinBox()
        self.gif_ms.setRange(10, 5000)
        self.gif_ms.setValue(60)
        self.gif_ms.setSuffix(" ms")
        self.button = QPushButton("Export…")
        for label, w in (("Format", self.kind), ("Rows", self.rows), ("Padding", self.padding), ("Upscale", self.scale),
                         ("Strip steps", self.strip_steps), ("Strip samples", self.strip_samples),
                         ("GIF frames", self.gif_frames), ("Frame time", self.gif_ms)):
            form.addRow(label, w)
        form.addRow(self.button)
        self.kind.currentIndexChanged.connect(lambda _: self._show_options())
        self.button.clicked.connect(self.ask_export)
        self._show_options()
        self.set_data(None)

    def fill_formats(self, *_: object) -> None:
        """The built-in formats and every registered trajectory exporter (plugins' too,
        after they load); keeps the choice."""
        current = self.kind.currentData()
        self.formats = {**FORMATS, **trajectory_exporters()}
        self.kind.clear()
        for key, (label, _, _) in self.formats.items():
            self.kind.addItem(label, key)
        self.kind.setCurrentIndex(max(0, self.kind.findData(current)))

    def _show_options(self) -> None:
        kind = self.kind.currentData()
        grid = kind in ("grid_png", "gif")
        for w, on in ((self.rows, grid), (self.padding, kind in ("grid_png", "strip_png", "gif")),
                      (self.scale, kind in ("grid_png", "strip_png", "gif")), (self.strip_steps, kind == "strip_png"),
                      (self.strip_samples, kind == "strip_png"), (self.gif_frames, kind == "gif"), (self.gif_ms, kind == "gif")):
            self.form.setRowVisible(w, on)

    def set_data(self, data: TrajectoryData | None, busy: bool = False) -> None:
        self.data, self.busy = data, busy
        self.button.setEnabled(data is not None)

    def ask_export(self) -> None:
        kind = self.kind.currentData()
        _, suffix, filt = self.formats[kind]
        default = (self.data.path.with_name(self.data.path.stem + "_" + kind).with_suffix(suffix)) if self.data else Path()
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.formats[kind][0]}", str(default), filt)
        if path:
            self.export_to(kind, Path(path))

    def export_to(self, kind: str, path: Path) -> Path | None:
        """Write ``kind`` to ``path``; a problem is reported through ``failed``."""
        data = self.data
        try:
            if data is None:
                raise DataError("nothing to export: run the sampler first")
            if self.busy and kind not in ("strip_png", "gif"):
                raise DataError(f"sampling is still writing {data.path.name}; export {self.formats.get(kind, (kind,))[0]} when it ends")
            data.update()
            pad, scale, rows = self.padding.value(), self.scale.value(), self.rows.value() or None
            if kind == "grid_png":
                out = export_grid(data, path, rows, pad, scale)
            elif kind == "strip_png":
                out = export_strip(data, path, parse_steps(self.strip_steps.text(), data.count),
                                   self.strip_samples.value(), pad, scale)
            elif kind == "gif":
                out = export_gif(data, path, self.gif_frames.value(), self.gif_ms.value(), rows, pad, scale)
            elif kind == "trajectory_h5":
                out = export_trajectory(data, path)
            elif kind == "samples_npz":
                out = export_samples(data, path)
            elif kind in trajectory_exporters():
                with TrajectoryReader(data.path) as reader:
                    out = EXPORTERS.get(kind)(reader, path)
            else:
                raise DataError(f"unknown export format {kind!r}; allowed: {', '.join(self.formats)}")
        except (DataError, OSError) as exc:
            self.failed.emit(f"Export to {path} failed: {exc}")
            return None
        self.exported.emit(str(out))
        return out

"""Reverse-process trajectories in HDF5, written step by step as sampling goes.

Layout (docs/DESIGN.md 3): ``x_t``, ``x0_hat`` and ``eps_hat`` as float16 ``(steps, N, ...)``,
one uncompressed chunk per step (docs/PITFALLS.md: h5py holds one global lock, so small
uncompressed chunks keep a reader on another thread from stalling; noisy float16 barely
compresses anyway); ``index``, ``t``, ``log_snr``, ``sigma`` per step; ``samples``
(the final states) once sampling ends; the run's config and the sampling settings as
attributes. ``x_t`` and ``x0_hat`` are in the data's raw scale, ``eps_hat`` in noise units.

The file is readable while it is written, from this process or another (SWMR): the
writer uses ``libver="latest"``, creates every dataset first, switches
``swmr_mode`` on and flushes after each step; progress is the ``steps_written``
dataset (a counter in a dataset, not an attribute, which SWMR readers cannot refresh).
Because readers follow it while it grows, this file is written in place rather than
renamed into place; ``steps_written`` < ``records`` (attribute) marks one that was cut short.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..core.errors import DataError

FLOAT16_MAX = float(np.finfo(np.float16).max)
PER_STEP = ("index", "t", "log_snr", "sigma")
ARRAYS = ("x_t", "x0_hat", "eps_hat")


def _half(x: Any) -> np.ndarray:
    """float16 without overflow to inf (very noisy states of a variance-exploding process)."""
    return np.clip(np.asarray(x, dtype=np.float32), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)


def _attr(value: Any) -> Any:
    """Attributes as HDF5 understands them: numbers, strings, or JSON for the rest."""
    if isinstance(value, (bool, int, float, str, np.number)):
        return value
    return json.dumps(value)


class TrajectoryWriter:
    """``append`` one step at a time; ``close`` (or the context manager) finishes the file."""

    def __init__(
        self,
        path: str | Path,
        steps: int,
        sample_shape: tuple[int, ...],
        attrs: dict[str, Any] | None = None,
        eps_hat: bool = True,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.steps = int(steps)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.arrays = ARRAYS if eps_hat else ARRAYS[:2]
        self.written = 0
        f = self._file = h5py.File(self.path, "w", libver="latest")
        f.attrs["steps"] = self.steps
        f.attrs["sample_shape"] = list(self.sample_shape)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr(value)
        # the record count under its own name: a caller's ``steps`` attribute (the
        # sampler's grid points) differs from it for Langevin (levels x steps per level)
        f.attrs["records"] = self.steps
        # every dataset exists before SWMR starts (SWMR cannot create objects)
        for name in self.arrays:
            f.create_dataset(
                name,
                shape=(0, *self.sample_shape),
                maxshape=(self.steps, *self.sample_shape),
                chunks=(1, *self.sample_shape),
                dtype=np.float16,
            )
        for name in PER_STEP:
            dtype = np.int64 if name == "index" else np.float64
            f.create_dataset(name, shape=(0,), maxshape=(self.steps,), chunks=(max(1, min(self.steps, 1024)),), dtype=dtype)
        f.create_dataset("samples", shape=self.sample_shape, dtype=np.float32)
        f.create_dataset("steps_written", data=np.int64(0))
        f.swmr_mode = True

    def append(self, index: int, t: float, log_snr: float, sigma: float, x_t: Any, x0_hat: Any, eps_hat: Any = None) -> None:
        if self.written >= self.steps:
            raise ValueError(f"trajectory {self.path} holds {self.steps} steps; got one more")
        f, i = self._file, self.written
        values = {"x_t": x_t, "x0_hat": x0_hat, "eps_hat": eps_hat}
        for name in self.arrays:
            ds = f[name]
            ds.resize(i + 1, axis=0)
            ds[i] = _half(values[name])
        for name, value in zip(PER_STEP, (index, t, log_snr, sigma)):
            ds = f[name]
            ds.resize(i + 1, axis=0)
            ds[i] = value
        self.written = i + 1
        f["steps_written"][()] = self.written
        f.flush()

    def finish(self, samples: Any) -> None:
        """Store the final states (raw scale, float32)."""
        self._file["samples"][...] = np.asarray(samples, dtype=np.float32)
        self._file.flush()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def hdf5_end_of_file(path: str | Path) -> int | None:
    """The end-of-file address an HDF5 file's superblock records (None when the file
    has no superblock we can read). HDF5 itself refuses a file shorter than this, except
    when it is opened for SWMR reading (the writer may be extending it): then a file cut
    mid-write makes every read retry its metadata checksums for minutes instead of
    failing. The superblock sits at 0, 512, 1024, ... (HDF5 file format spec, II.A)."""
    with open(path, "rb") as f:
        for base in (0, 512, 1024, 2048, 4096):
            f.seek(base)
            head = f.read(48)
            if head[:8] != HDF5_SIGNATURE:
                continue
            version = head[8]
            if version in (2, 3):  # signature, version, sizes of offsets/lengths, flags, 3 addresses, then EOF
                size = head[9]
                at = 12 + 2 * size
            elif version in (0, 1):  # 16 bytes of versions and sizes (+4 for v1), base, free space, then EOF
                size = head[13]
                at = (24 if version == 0 else 28) + 2 * size
            else:
                return None
            fmt = {4: "<I", 8: "<Q"}.get(size)
            if fmt is None or at + size > len(head):
                return None
            return base + struct.unpack(fmt, head[at : at + size])[0]
    return None


class TrajectoryReader:
    """Read a trajectory, also while another thread or process writes it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"trajectory file {self.path} does not exist")
        try:
            end, size = hdf5_end_of_file(self.path), self.path.stat().st_size
        except OSError as exc:
            raise DataError(f"trajectory file {self.path} cannot be read: {exc}") from None
        if end is not None and size < end:  # a flushed file is never shorter than its recorded end
            raise DataError(f"trajectory file {self.path} was cut short: {size} of its {end} bytes are there")
        try:
            self._file = h5py.File(self.path, "r", libver="latest", swmr=True)
        except OSError:
            try:  # a file written without SWMR (e.g. by another tool)
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise DataError(f"trajectory file {self.path} is not a readable HDF5 file: {exc}") from None
        missing = [n for n in ("x_t", "x0_hat", *PER_STEP) if n not in self._file]
        if missing:
            raise DataError(f"trajectory file {self.path} lacks dataset(s) {', '.join(missing)}")

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._file.attrs)

    @property
    def config(self) -> dict[str, Any]:
        raw = self._file.attrs.get("config")
        return json.loads(raw) if isinstance(raw, str) else {}

    @property
    def steps(self) -> int:
        """Steps the finished file will hold."""
        attrs = self._file.attrs
        return int(attrs.get("records", attrs.get("steps", len(self._file["t"]))))

    def refresh(self) -> None:
        if self._file.swmr_mode:
            for name in self._file:
                self._file[name].refresh()

    def __len__(self) -> int:
        """Steps readable now."""
        self.refresh()
        return self._readable()

    def _readable(self) -> int:
        """Steps every dataset holds: the counter, capped by the datasets' extents. The
        counter is raw data, on disk the moment it is set, while the extents are metadata
        that reach the file only at the writer's flush: a reader between the two saw one
        step more than the datasets held (IndexError in ``step``)."""
        f = self._file
        n = min(f[name].shape[0] for name in ("t", *ARRAYS) if name in f)
        return min(n, int(f["steps_written"][()])) if "steps_written" in f else n

    def step(self, i: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"step {i} of trajectory {self.path} with {n} steps written")
        i %= n
        f = self._file
        out: dict[str, Any] = {name: float(f[name][i]) for name in ("t", "log_snr", "sigma")}
        out["index"] = int(f["index"][i])
        for name in ARRAYS:
            if name in f:
                out[name] = f[name][i].astype(np.float32)
        return out

    def arrays(self, i: int, names: tuple[str, ...] = ARRAYS) -> dict[str, np.ndarray]:
        """The stored float16 arrays of step ``i`` (no refresh, no conversion): the
        viewer's lean path, one chunk read per array; ``i`` must be below ``len()``. A
        slice of steps reads them in one call per array (stacked on a first axis)."""
        f = self._file
        return {name: f[name][i] for name in names if name in f}

    def per_step(self) -> dict[str, np.ndarray]:
        """``index``, ``t``, ``log_snr``, ``sigma`` of every step written so far (refresh
        first, e.g. through ``len()``), one read each."""
        n = self._readable()
        return {name: self._file[name][:n] for name in PER_STEP}

    def samples(self) -> np.ndarray:
        return self._file["samples"][...]

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> "TrajectoryReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""The in-memory dataset every model trains on, whatever its source.

``data`` is in the model's range: images in [-1, 1] as (N, C, H, W); points
standardised per dataset. ``to_raw`` maps model-range arrays back to the source's own
scale (pixels in [0, 1], points in their original coordinates) for display and export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class Dataset:
    name: str
    data: Tensor  # float32, model range: (N, D) points or (N, C, H, W) images
    kind: str  # "points" | "images"
    shift: Tensor  # raw = data * scale + shift (broadcast over the sample shape)
    scale: Tensor
    meta: dict[str, Any] = field(default_factory=dict)  # source, path, key, skipped files ...

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.data.shape[1:])

    @property
    def dim(self) -> int:
        """Number of scalar dimensions of one sample (for bits/dim)."""
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.data)

    def to_raw(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Model range -> the data's own scale, as float32 numpy."""
        x = torch.as_tensor(x, dtype=torch.float32).cpu()
        return (x * self.scale + self.shift).numpy()

    def from_raw(self, raw: Tensor | np.ndarray) -> Tensor:
        raw = torch.as_tensor(raw, dtype=torch.float32)
        return (raw - self.shift) / self.scale

    def to_uint8(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Images in model range -> uint8 (N, H, W, C) for display and export."""
        raw = self.to_raw(x)
        raw = np.moveaxis(raw, 1, -1)
        return (np.clip(raw, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def log_scale_sum(self) -> float:
        """sum log|scale| over one sample: NLL(raw) = NLL(model) + this (change of variables)."""
        s = torch.broadcast_to(self.scale, self.shape) if self.scale.dim() else self.scale.expand(self.shape)
        return float(torch.log(s.abs()).sum())

    def split(self, held_out: float = 0.1, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """Deterministic train / held-out split (same seed, same split)."""
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self.data), generator=g)
        n_test = max(1, int(round(held_out * len(self.data))))
        test, train = perm[:n_test], perm[n_test:]
        mk = lambda idx, part: Dataset(self.name, self.data[idx], self.kind, self.shift, self.scale, {**self.meta, "split": part})
        return mk(train, "train"), mk(test, "held_out")

    def stats(self) -> dict[str, Any]:
        """Statistics for the data panel: count, shape, range, per-channel mean/std (raw scale)."""
        raw = torch.as_tensor(self.to_raw(self.data))
        if self.kind == "images":
            per = raw.transpose(0, 1).reshape(raw.shape[1], -1)
        else:
            per = raw.T
        return {
            "count": len(self.data),
            "shape": self.shape,
            "kind": self.kind,
            "channels": int(self.shape[0]) if self.kind == "images" else int(self.shape[-1]),
            "min": float(raw.min()),
            "max": float(raw.max()),
            "mean": per.mean(1).tolist(),
            "std": per.std(1).tolist(),
        }

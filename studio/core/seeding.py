"""Reproducible randomness: one seed for every generator, and the RNG state as plain
tensors and types so a checkpoint can store it without pickling (torch.load with
``weights_only=True`` reads it back)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA) and return a fresh CPU generator
    seeded the same, which the core's methods and samplers take as ``generator``."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    return torch.Generator().manual_seed(seed)


def get_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state as tensors and plain types: torch CPU (and CUDA when present),
    numpy's MT19937 and python's ``random``; plus ``generator`` when one is given."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`get_rng_state` captured (CUDA state only where present here)."""
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], np.asarray(npy["keys"], dtype=np.uint32), int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"]))
    )
    py = state["python"]
    internal = tuple(int(v) for v in torch.as_tensor(py["internal"]).tolist())
    random.setstate((int(py["version"]), internal, py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])[: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8) for s in cuda])
    if generator is not None and "generator" in state:
        generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))

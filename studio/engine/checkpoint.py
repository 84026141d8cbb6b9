"""Checkpoints as one safetensors file each: loaded without unpickling anything.

A training state is a nest of dicts and lists holding tensors and plain values (model,
EMA and method state dicts, the optimizer's state dict, RNG states, the data position).
:func:`flatten` puts every tensor in the safetensors table under its dotted path and
the rest, with a marker naming each tensor's path, in a JSON string in the file's metadata;
:func:`unflatten` reverses it. Dicts whose keys are not all strings (the optimizer's
per-parameter state is keyed by int) are stored as lists of pairs, so they come back
with the same keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ..core.errors import StudioError
from .atomic import atomic_path

FORMAT = "diffusion-studio-checkpoint-1"


class CheckpointError(StudioError):
    """A checkpoint is missing, truncated or not one of ours."""


def flatten(tree: Any, prefix: str = "", tensors: dict[str, torch.Tensor] | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
    tensors = {} if tensors is None else tensors
    if isinstance(tree, torch.Tensor):
        key = prefix or "tensor"
        # safetensors wants contiguous, unshared CPU tensors
        tensors[key] = tree.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}, tensors
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: flatten(v, f"{prefix}.{k}" if prefix else k, tensors)[0] for k, v in tree.items()}, tensors
        pairs = [[k, flatten(v, f"{prefix}.{k}" if prefix else str(k), tensors)[0]] for k, v in tree.items()]
        return {"__pairs__": pairs}, tensors
    if isinstance(tree, (list, tuple)):
        return [flatten(v, f"{prefix}.{i}", tensors)[0] for i, v in enumerate(tree)], tensors
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree, tensors
    raise TypeError(f"cannot store {type(tree).__name__} at {prefix!r} in a checkpoint")


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__pairs__"}:
            return {k: unflatten(v, tensors) for k, v in tree["__pairs__"]}
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary name, then rename)."""
    tree, tensors = flatten(state)
    metadata = {"format": FORMAT, "tree": json.dumps(tree)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _open_error(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc})")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON part of a checkpoint (cheap: no tensors are read)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _open_error(path, exc) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a diffusion-studio checkpoint (format {meta.get('format')!r})")
    return json.loads(meta["tree"])


def load_checkpoint(path: str | Path, parts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint` (only the top-level ``parts`` if given)."""
    path = Path(path)
    tree = read_metadata(path)
    if parts is not None:
        tree = {k: v for k, v in tree.items() if k in parts}
    try:
        if parts is None:
            tensors = load_file(str(path))
        else:
            with safe_open(str(path), framework="pt") as f:
                wanted = [k for k in f.keys() if k.split(".", 1)[0] in parts]
                tensors = {k: f.get_tensor(k) for k in wanted}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    try:
        return unflatten(tree, tensors)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks tensor {exc}") from None

"""Exponential moving average of a network's weights.

Quality on 2-D toys wanders with the last-iterate weights; sampling from an EMA (decay
0.999) brought sliced Wasserstein to the held-out floor (docs/PITFALLS.md). Buffers (e.g.
normalisation statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from .errors import ConfigError


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after each optimiser step.

    With ``warmup=True`` the decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the
    first updates (the TensorFlow ``ExponentialMovingAverage`` num_updates rule), so an
    early average is not dominated by the random initialisation.

    ``update(model, steps=k)`` stands for k per-step updates with the current weights:
    one lerp with the product of the k per-step decays (``decay**k`` once warmed up).
    Updating every k steps this way is the usual trick to take the average off the
    training step's path; the average lags the weights by fewer than k steps.
    ``num_updates`` counts steps, so ``n`` above is the step count either way.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        decay = float(decay)
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"ema decay = {decay} must be in [0, 1)")
        self.decay = decay
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self, n: int | None = None) -> float:
        """The decay of the update after ``n`` steps (default: the steps so far)."""
        if not self.warmup:
            return self.decay
        n = self.num_updates if n is None else n
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module, steps: int = 1) -> None:
        d = math.prod(self.current_decay(self.num_updates + j) for j in range(steps))
        self.num_updates += steps
        shadows = list(self.module.parameters())
        weights = [p.detach().to(s.dtype) for s, p in zip(shadows, model.parameters())]
        if shadows:  # one fused call: a python loop of lerp_ cost ~2x on CPU (bench_trainer)
            torch._foreach_lerp_(shadows, weights, 1.0 - d)
        for shadow, b in zip(self.module.buffers(), model.buffers()):
            shadow.copy_(b)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (same architecture)."""
        model.load_state_dict(self.module.state_dict())

    @contextmanager
    def averaged(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the averaged weights into ``model``; restores its own after."""
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            model.load_state_dict(saved)

    def state_dict(self) -> dict[str, Tensor]:
        """Averaged weights plus ``num_updates`` (tensors only: safetensors-friendly)."""
        state = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        weights = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
        self.module.load_state_dict(weights)
        self.num_updates = int(state.get("num_updates", 0))

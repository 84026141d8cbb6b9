"""Data-parallel training under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node N -m studio train CONFIG.toml`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process group (gloo on CPU,
nccl on CUDA). Each rank trains on its own shard of every epoch's permutation with its
own random stream; rank 0 alone writes the run directory. Without ``torchrun`` the
context is a single process and nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (plain data), on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def from_env() -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> DistContext:
    """Join the process group when launched by torchrun (idempotent)."""
    ctx = from_env()
    if ctx.active and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def teardown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        # every rank arrives before any leaves: a rank that destroyed its group while
        # rank 0 still wrote the run's last files sometimes aborted on exit (gloo's
        # threads torn down mid-flight: "terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def rank_device(ctx: DistContext, device: torch.device) -> torch.device:
    """Each rank its own GPU (LOCAL_RANK); CPU ranks share the CPU."""
    if device.type == "cuda" and ctx.active:
        return torch.device("cuda", ctx.local_rank)
    return device

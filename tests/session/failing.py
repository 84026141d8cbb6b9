"""A network that raises once, at its n-th forward call: a job that dies mid-run of an
exception other than Cancelled (registered as network kind ``failing_mlp``)."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from studio.core.networks.mlp import mlp
from studio.core.registry import NETWORKS


class Failing(nn.Module):
    def __init__(self, net: nn.Module, plan: dict):
        super().__init__()
        self.net, self.plan = net, plan

    def forward(self, x, log_snr):
        self.plan["calls"] += 1
        if self.plan["calls"] == self.plan["fail_at"]:
            raise RuntimeError(self.plan["message"])
        return self.net(x, log_snr)


@contextmanager
def failing_network(fail_at: int, message: str = "the network fell over"):
    """Register ``failing_mlp`` for the block; yields the plan (``calls`` counts)."""
    plan = {"calls": 0, "fail_at": fail_at, "message": message}

    def factory(data_shape, hidden: int = 32, depth: int = 1):
        return Failing(mlp(data_shape, hidden=hidden, depth=depth), plan)

    NETWORKS.register("failing_mlp", factory, data="points", replace=True)
    try:
        yield plan
    finally:
        NETWORKS.unregister("failing_mlp")

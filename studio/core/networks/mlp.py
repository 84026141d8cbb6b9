"""An MLP for points (N, D), conditioned on the noise level: the 2-D toy network.

Residual blocks ``h + W2 SiLU(W1 SiLU(LN(h)) + E(lambda))`` with the noise-level
embedding ``E`` added inside every block (as the DDPM UNet does, Ho et al. 2020,
appendix B). The last layer of every residual branch and the output layer start at
zero, so each block starts as the identity and the network starts by predicting 0
(the mean of eps), which keeps the first training steps stable.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import NETWORKS
from .embedding import Embedding, NoiseEmbedding


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int, emb_hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return h + self.fc2(self.act(self.fc1(self.act(self.norm(h))) + self.emb(emb)))


class MLP(nn.Module):
    """``net(x, log_snr)`` for x of shape (B, D) (or (B, *data_shape), flattened inside)."""

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: int = 256,
        depth: int = 4,
        emb_dim: int = 64,
        embedding: Embedding = "sinusoidal",
    ):
        super().__init__()
        shape = tuple(int(s) for s in (data_shape if isinstance(data_shape, Sequence) else (data_shape,)))
        if not shape or any(s < 1 for s in shape):
            raise ConfigError(f"network data_shape = {tuple(data_shape)!r} must be positive sizes, e.g. (2,)")
        for key, value, low in (("hidden", hidden, 1), ("depth", depth, 0), ("emb_dim", emb_dim, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"network {key} = {value!r} must be an integer >= {low}")
        self.data_shape = shape
        dim = int(torch.tensor(shape).prod())
        self.embed = nn.Sequential(NoiseEmbedding(emb_dim, embedding), nn.Linear(emb_dim, hidden), nn.SiLU())
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, hidden) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, log_snr: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"MLP built for samples of shape {self.data_shape} got input of shape {tuple(x.shape)}")
        log_snr = torch.as_tensor(log_snr, device=x.device).reshape(-1).expand(x.shape[0])
        emb = self.embed(log_snr)
        h = self.inp(x.reshape(x.shape[0], -1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(torch.nn.functional.silu(self.out_norm(h))).reshape(x.shape)


@NETWORKS.register("mlp", data="points")
def mlp(data_shape: Sequence[int], hidden: int = 256, depth: int = 4, emb_dim: int = 64, embedding: Embedding = "sinusoidal") -> MLP:
    """Residual MLP with a log-SNR embedding, for points (N, D)."""
    return MLP(data_shape, hidden=hidden, depth=depth, emb_dim=emb_dim, embedding=embedding)

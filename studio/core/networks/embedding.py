"""Noise-level embeddings: features of the log-SNR a network is conditioned on.

Every network of the studio sees the noise level as ``log_snr`` (docs/DESIGN.md 1), which
may be huge or +-inf at the ends of a schedule; it is clamped to [-30, 30] (beyond that
a sample is all data or all noise for any network) and divided by 8 (about
``ln(sigma) / 4``, EDM's noise conditioning scale, Karras et al. 2022, table 1) before
the features are taken.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..errors import ConfigError

LOG_SNR_CLAMP = 30.0
LOG_SNR_SCALE = 8.0
Embedding = Literal["sinusoidal", "fourier"]  # the annotation forms offer as a list
EMBEDDINGS = get_args(Embedding)


def clamp_log_snr(log_snr: Tensor) -> Tensor:
    """log-SNR as float32 in [-30, 30]: +-inf map to the ends, NaN is an error upstream."""
    x = torch.as_tensor(log_snr).float()
    return x.nan_to_num(posinf=LOG_SNR_CLAMP, neginf=-LOG_SNR_CLAMP).clamp(-LOG_SNR_CLAMP, LOG_SNR_CLAMP)


def sinusoidal_frequencies(half: int, max_period: float = 1000.0) -> Tensor:
    """Geometric frequencies from 1 down to 1 / max_period (Vaswani et al. 2017, as
    DDPM embeds t)."""
    return torch.exp(-math.log(max_period) * torch.arange(half) / max(half - 1, 1))


def fourier_frequencies(half: int, scale: float = 16.0, seed: int = 0) -> Tensor:
    """Random Fourier features 2 pi B, B ~ N(0, scale^2) (Tancik et al. 2020; Song et al.
    2021 embed log sigma this way). Fixed seed: the same net always gets the same B."""
    return 2 * math.pi * scale * torch.randn(half, generator=torch.Generator().manual_seed(seed))


class NoiseEmbedding(nn.Module):
    """log-SNR (B,) -> features (B, dim): ``[cos(w x), sin(w x)]`` of the clamped,
    scaled log-SNR ``x``, with sinusoidal or random Fourier frequencies ``w``."""

    def __init__(self, dim: int, kind: str = "sinusoidal", fourier_scale: float = 16.0):
        super().__init__()
        if kind not in EMBEDDINGS:
            raise ConfigError(f"network embedding = {kind!r}; allowed: {', '.join(EMBEDDINGS)}")
        if int(dim) < 2 or int(dim) % 2:
            raise ConfigError(f"network emb_dim = {dim!r} must be an even integer >= 2")
        half = int(dim) // 2
        freqs = sinusoidal_frequencies(half) if kind == "sinusoidal" else fourier_frequencies(half, fourier_scale)
        self.kind = kind
        self.dim = int(dim)
        self.register_buffer("freqs", freqs)

    def forward(self, log_snr: Tensor) -> Tensor:
        x = clamp_log_snr(log_snr).to(self.freqs.device).reshape(-1) / LOG_SNR_SCALE
        angles = x[:, None] * self.freqs[None]
        return torch.cat([angles.cos(), angles.sin()], dim=1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kind={self.kind!r}"

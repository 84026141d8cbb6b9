"""A small UNet for images up to 64x64 with 1 or 3 channels, conditioned on log-SNR.

The architecture of DDPM (Ho et al. 2020, appendix B; itself PixelCNN++'s UNet):
residual blocks with GroupNorm and SiLU, the noise-level embedding added inside every
block, self-attention at low resolutions and always in the middle, strided-conv down-
and nearest+conv up-sampling, skip connections between the two halves. The last conv
of every residual branch and of the output is zero-initialised, so each block starts
as the identity and the network starts by predicting 0 (the mean of eps).

Any H, W >= 8 works: the input is padded (edge values repeated) up to a multiple of
2^(levels - 1) and the output cropped back, so 28x28 or 10x12 images run unchanged.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import NETWORKS
from .embedding import Embedding, NoiseEmbedding  # clamps log-SNR to [-30, 30] before embedding

MIN_SIDE = 8


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the most groups (up to 32) that keep >= 4 channels per group."""
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if (channels % g == 0 and channels // g >= 4) or g == 1)
    return nn.GroupNorm(groups, channels)


def zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GN-SiLU-conv, + embedding, GN-SiLU-dropout-conv(zero), + skip (DDPM appendix B)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.in_layers = nn.Sequential(norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, cout))
        self.out_layers = nn.Sequential(
            norm(cout), nn.SiLU(), nn.Dropout(dropout), zero(nn.Conv2d(cout, cout, 3, padding=1))
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, as a residual."""

    def __init__(self, channels: int, head_channels: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.ModuleList):
    """Residual blocks of one resolution, each optionally followed by attention."""

    def __init__(self, channels: Sequence[tuple[int, int]], emb_dim: int, dropout: float, attend: bool):
        super().__init__(
            nn.ModuleList([ResBlock(cin, cout, emb_dim, dropout)] + ([Attention(cout)] if attend else []))
            for cin, cout in channels
        )


def _run(block: nn.ModuleList, h: Tensor, emb: Tensor) -> Tensor:
    h = block[0](h, emb)
    return block[1](h) if len(block) > 1 else h


class UNet(nn.Module):
    """``net(x, log_snr)`` for x of shape (B, C, H, W); output has the shape of x."""

    def __init__(
        self,
        data_shape: Sequence[int],
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (8,),
        dropout: float = 0.0,
        embedding: Embedding = "sinusoidal",
    ):
        super().__init__()
        c, h, w = _check_shape(data_shape)
        _check_options(base_channels, channel_mults, num_res_blocks, dropout)
        self.data_shape = (c, h, w)
        self.factor = 2 ** (len(channel_mults) - 1)
        pad_h, pad_w = -h % self.factor, -w % self.factor
        if (h + pad_h) // self.factor < 1 or (w + pad_w) // self.factor < 1:  # pragma: no cover - MIN_SIDE guards
            raise ConfigError(f"network data_shape {tuple(data_shape)} is too small for {len(channel_mults)} levels")
        self.pad = (0, pad_w, 0, pad_h)

        emb_dim = 4 * base_channels
        self.embed = nn.Sequential(
            NoiseEmbedding(base_channels, embedding),
            nn.Linear(base_channels, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        self.conv_in = nn.Conv2d(c, base_channels, 3, padding=1)

        # encoder: record the channels of every skip connection
        widths = [base_channels * m for m in channel_mults]
        skips, ch, side = [base_channels], base_channels, max(h + pad_h, w + pad_w)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i, width in enumerate(widths):
            attend = side in attention_resolutions
            pairs = [(ch if j == 0 else width, width) for j in range(num_res_blocks)]
            self.down.append(Level(pairs, emb_dim, dropout, attend))
            ch = width
            skips += [width] * num_res_blocks
            last = i == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            if not last:
                skips.append(ch)
                side //= 2

        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, dropout), Attention(ch), ResBlock(ch, ch, emb_dim, dropout)])

        # decoder: one more block per level than the encoder, each eating one skip
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            attend = side in attention_resolutions
            pairs = []
            for _ in range(num_res_blocks + 1):
                pairs.append((ch + skips.pop(), width))
                ch = width
            self.up.append(Level(pairs, emb_dim, dropout, attend))
            self.upsample.append(
                nn.Identity() if i == 0 else nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))
            )
            side *= 2
        self.out = nn.Sequential(norm(ch), nn.SiLU(), zero(nn.Conv2d(ch, c, 3, padding=1)))

    def forward(self, x: Tensor, log_snr: Tensor) -> Tensor:
        if x.shape[1:] != self.data_shape:
            raise ValueError(f"UNet built for {self.data_shape} got input of shape {tuple(x.shape)}")
        log_snr = torch.as_tensor(log_snr, device=x.device).reshape(-1).expand(x.shape[0])
        emb = self.embed(log_snr)
        h = F.pad(x, self.pad, mode="replicate") if any(self.pad) else x
        h = self.conv_in(h)
        hs = [h]
        for level, down in zip(self.down, self.downsample):
            for block in level:
                h = _run(block, h, emb)
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for level, up in zip(self.up, self.upsample):
            for block in level:
                h = _run(block, torch.cat([h, hs.pop()], dim=1), emb)
            h = up(h)
        out = self.out(h)
        return out[..., : x.shape[-2], : x.shape[-1]]


def _check_shape(data_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in data_shape)
    if len(shape) != 3:
        raise ConfigError(f"network 'unet' needs images (C, H, W); got data_shape {shape} (use 'mlp' for points)")
    c, h, w = shape
    if c < 1 or h < MIN_SIDE or w < MIN_SIDE:
        raise ConfigError(f"network 'unet' needs images with H, W >= {MIN_SIDE} and C >= 1; got data_shape {shape}")
    return c, h, w


def _check_options(base_channels: int, channel_mults: Sequence[int], num_res_blocks: int, dropout: float) -> None:
    if not isinstance(base_channels, int) or base_channels < 8 or base_channels % 4:
        raise ConfigError(f"network base_channels = {base_channels!r} must be a multiple of 4, >= 8")
    if not channel_mults or any(not isinstance(m, int) or m < 1 for m in channel_mults) or len(channel_mults) > 4:
        raise ConfigError(f"network channel_mults = {channel_mults!r} must be 1 to 4 positive integers")
    if not isinstance(num_res_blocks, int) or num_res_blocks < 1:
        raise ConfigError(f"network num_res_blocks = {num_res_blocks!r} must be an integer >= 1")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"network dropout = {dropout!r} must be in [0, 1)")


# the class is the factory: factory(data_shape, **options), options checked by its signature
NETWORKS.register("unet", UNet, kind="images", description="Small UNet (DDPM-style) for images up to 64x64")

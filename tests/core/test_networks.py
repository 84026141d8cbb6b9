"""The small UNet: shapes (odd ones too), extreme noise levels, gradients, start at 0."""

import math

import pytest
import torch

from studio.core.errors import ConfigError
from studio.core.networks.unet import UNet
from studio.core.registry import NETWORKS

SMALL = dict(base_channels=16, num_res_blocks=1)


def _randomise_zero_layers(net: UNet) -> UNet:
    """Undo the zero init (output, residual branches) so that outputs carry information."""
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and not torch.count_nonzero(m.weight):
            m.reset_parameters()
    return net


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (3, 32, 32), (3, 64, 64), (1, 28, 28), (3, 10, 13)])
def test_output_has_the_input_shape(shape):
    torch.manual_seed(0)
    net = NETWORKS.get("unet")(shape, **SMALL)
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([-3.0, 5.0]))
    assert out.shape == x.shape


def test_default_unet_is_small_enough_for_cpu():
    net = UNet((3, 32, 32))
    n = sum(p.numel() for p in net.parameters())
    assert 0.5e6 < n < 3e6, n
    assert any(type(m).__name__ == "Attention" for m in net.down.modules())  # at 8x8


def test_too_small_or_not_images_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"H, W >= 8.*\(1, 4, 4\)"):
        UNet((1, 4, 4))
    with pytest.raises(ConfigError, match=r"\(2,\).*mlp"):
        UNet((2,))
    with pytest.raises(ConfigError, match="embedding = 'wavelet'.*sinusoidal, fourier"):
        UNet((1, 8, 8), embedding="wavelet")
    with pytest.raises(ConfigError, match="channel_mults"):
        UNet((1, 8, 8), channel_mults=())


def test_starts_by_predicting_zero():
    net = UNet((1, 16, 16), **SMALL)
    out = net(torch.randn(4, 1, 16, 16), torch.linspace(-10, 10, 4))
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("embedding", ["sinusoidal", "fourier"])
def test_finite_at_extreme_log_snr_and_clamped_beyond_30(embedding):
    torch.manual_seed(0)
    net = _randomise_zero_layers(UNet((1, 8, 8), embedding=embedding, **SMALL))
    x = torch.randn(1, 1, 8, 8).expand(5, -1, -1, -1)
    out = net(x, torch.tensor([-math.inf, -40.0, 0.0, 40.0, math.inf]))
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[1], out[2])  # the noise level matters
    clamped = net(x[:2], torch.tensor([-30.0, 30.0]))
    torch.testing.assert_close(out[[0, 4]], clamped)
    torch.testing.assert_close(out[[1, 3]], clamped)
    # a scalar log-SNR is broadcast over the batch
    torch.testing.assert_close(net(x[:2], torch.tensor(0.0)), out[[2, 2]])


def test_gradients_reach_every_parameter_and_training_fits_a_batch():
    torch.manual_seed(0)
    net = UNet((1, 8, 8), **SMALL)
    x, lam = torch.randn(8, 1, 8, 8), torch.linspace(-5, 5, 8)
    target = torch.randn(8, 1, 8, 8)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):  # zero-initialised layers open up one after the other
        opt.zero_grad()
        loss = (net(x, lam) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    dead = [n for n, p in net.named_parameters() if p.grad is None or not torch.count_nonzero(p.grad)]
    assert not dead, f"no gradient reaches {dead}"
    assert losses[-1] < 0.5 * losses[0]

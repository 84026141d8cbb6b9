"""What the three families share: the loss record, option checks, noise drawn from a
caller's generator, the network readout and the prior.

A method owns its schedule (an ``nn.Module``), so a learned schedule's parameters are
in ``method.parameters()`` and train with the network (docs/INTERFACES.md, core.methods).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, get_args

import torch
from torch import Tensor, nn

from ..errors import ConfigError, StudioError
from ..parameterization import Prediction, expand_like, input_scale, to_x0_eps
from ..schedules import Schedule


@dataclass
class LossOutput:
    """Per-sample training objective ``loss`` (B,), the noise levels drawn (``log_snr``,
    continuous ``t``, both (B,)) and optional per-sample components ``terms``."""

    loss: Tensor
    log_snr: Tensor
    t: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


# Option values as Literal annotations: the config checks and the app's forms read them.
DataKind = Literal["continuous", "uint8"]  # uint8: the discretized decoder L_0 for 8-bit data
DATA_KINDS = get_args(DataKind)
EpsOnly = Literal["eps"]


def check_choice(method: str, key: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"method {method!r}: {key} = {value!r}; allowed: {', '.join(allowed)}")
    return value


def randn(shape: Sequence[int], generator: torch.Generator | None, device: Any = None, dtype: Any = None) -> Tensor:
    """Standard normal noise from ``generator`` (on the generator's device, then moved),
    so that a seeded run draws the same noise on any device."""
    dtype = dtype or torch.get_default_dtype()
    if generator is None:
        return torch.randn(*shape, device=device, dtype=dtype)
    return torch.randn(*shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def rand(shape: Sequence[int], generator: torch.Generator | None, device: Any = None, dtype: Any = None) -> Tensor:
    """Uniform [0, 1) numbers from ``generator``, as :func:`randn`."""
    dtype = dtype or torch.get_default_dtype()
    if generator is None:
        return torch.rand(*shape, device=device, dtype=dtype)
    return torch.rand(*shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def randint(high: int, shape: Sequence[int], generator: torch.Generator | None, device: Any = None) -> Tensor:
    if generator is None:
        return torch.randint(0, high, tuple(shape), device=device)
    return torch.randint(0, high, tuple(shape), generator=generator, device=generator.device).to(device)


def sum_dims(x: Tensor) -> Tensor:
    """Sum over every dimension but the batch: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).sum(1)


def mean_dims(x: Tensor) -> Tensor:
    """Mean over every dimension but the batch (Ho et al.'s ``meanflat``)."""
    return x.reshape(x.shape[0], -1).mean(1)


def sampler_family_of(method_name: str) -> str:
    """The family whose samplers serve a registered method (its ``sampler_family``, else
    its name), for lists of samplers offered for a run's method."""
    from ..registry import METHODS

    cls = METHODS.get(method_name) if method_name in METHODS else None
    return getattr(cls, "sampler_family", "") or method_name


class Method(nn.Module, ABC):
    """A diffusion family: how to train a network and read its output.

    Subclasses set ``name`` and ``prediction`` and write :meth:`loss` (and
    :meth:`nll_bound` where the family has a likelihood bound).
    """

    name: str = ""
    predictions: tuple[str, ...] = ("eps",)
    # The family whose samplers read this method's network (a sampler's ``families``
    # lists these); empty means the method's own name. A plugin method on a variance
    # exploding process that the NCSN samplers serve sets "ncsn" (plugins/edm_method.py).
    sampler_family: str = ""

    def __init__(self, schedule: Schedule, prediction: str = "eps"):
        super().__init__()
        if not isinstance(schedule, Schedule):
            raise ConfigError(f"method {self.name!r} needs a Schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.prediction = check_choice(self.name, "prediction", prediction, self.predictions)

    # --- reading the network ----------------------------------------------------------
    def wrap_network(self, net: nn.Module) -> nn.Module:
        """The module the trainer, :meth:`predict` and the samplers call as
        ``net(x_t * c_in, log_snr)`` and read as :attr:`prediction`: the network itself,
        unless the method preconditions it (EDM's c_skip and c_out around the network,
        plugins/edm_method.py). The engine wraps once, when it builds the model
        (engine.config.build_model), so the wrapper is trained, saved and loaded with it."""
        return net

    def call_net(self, net: nn.Module, x_t: Tensor, alpha: Tensor, sigma: Tensor, log_snr: Tensor) -> Tensor:
        """The network output at (x_t, noise level), input scaled by EDM's c_in so one
        network serves variance preserving and exploding processes."""
        return net(x_t * expand_like(input_scale(alpha, sigma), x_t), log_snr)

    def predict(self, net: nn.Module, x_t: Tensor, t: Tensor) -> Prediction:
        """(x0, eps) predicted from x_t at continuous times ``t`` (B,) or a scalar."""
        t = torch.as_tensor(t, device=x_t.device)
        t = t.expand(x_t.shape[0]) if t.dim() == 0 else t
        log_snr = self.schedule.log_snr(t).to(x_t.dtype)
        alpha, sigma = self.schedule.alpha_sigma(t)
        alpha, sigma = alpha.to(x_t.dtype), sigma.to(x_t.dtype)
        out = self.call_net(net, x_t, alpha, sigma, log_snr)
        return to_x0_eps(self.prediction, out, x_t, alpha, sigma)

    # --- the prior a sampler starts from ----------------------------------------------
    def prior_sample(self, shape: Sequence[int], generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        return randn(tuple(shape), generator, device) * self.schedule.prior_std()

    # --- training and evaluation --------------------------------------------------------
    @abstractmethod
    def loss(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """The per-sample training objective and the noise levels drawn (each family's own)."""

    def nll_bound(self, net: nn.Module, x0: Tensor, generator: torch.Generator | None = None, **options: Any) -> dict[str, Tensor]:
        raise StudioError(f"method {self.name!r} has no likelihood bound")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, prediction={self.prediction!r}"

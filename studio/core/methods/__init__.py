"""The three diffusion families; importing this package registers them in ``METHODS``:
``ncsn`` (Song & Ermon 2019), ``ddpm`` (Ho et al. 2020), ``vdm`` (Kingma et al. 2021)."""

from .base import LossOutput, Method
from .ddpm import DDPM
from .ncsn import NCSN
from .vdm import VDM

__all__ = ["LossOutput", "Method", "NCSN", "DDPM", "VDM"]

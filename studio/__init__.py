"""Diffusion Studio: a desktop lab for diffusion models (NCSN, DDPM, VDM).

Layers, importing only downward: ``gui`` -> ``engine`` -> ``plugins`` -> ``core``.
"""

__version__ = "0.1.0"

"""The ``[data] normalisation`` choice: the same raw data seen through another
(shift, scale). ``to_raw`` is unchanged; only the model-range ``data`` differs, so what
trains (the config) is exactly what the app's Data panel previews."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import Dataset

NORMALISATIONS = {
    "default": "as the loader sets it (images [-1, 1], points standardised)",
    "unit_max": "scaled so the largest |value| is 1",
    "none": "raw values (no shift, no scale)",
}


def normalise(dataset: Dataset, mode: str) -> Dataset:
    """``dataset`` with the (shift, scale) that ``mode`` names; ``default`` keeps the loader's."""
    if mode == "default":
        return dataset
    if mode not in NORMALISATIONS:
        raise ConfigError(f"[data] normalisation = {mode!r}; allowed: {', '.join(NORMALISATIONS)}")
    raw = torch.as_tensor(dataset.to_raw(dataset.data))
    if mode == "none":
        shift, scale = torch.tensor(0.0), torch.tensor(1.0)
    else:
        shift, scale = torch.tensor(0.0), raw.abs().max().clamp_min(1e-12)
    meta = {**dataset.meta, "normalisation": mode}
    return Dataset(dataset.name, ((raw - shift) / scale).float(), dataset.kind, shift, scale, meta)

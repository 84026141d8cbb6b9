"""A small-scale FID for digit images: a classifier trained by the studio on scikit-learn's
8x8 digits (``scripts/train_digits_classifier.py``), its penultimate-layer features, the
Frechet distance between the features of samples and of held-out digits, and the fraction
of samples it classifies with confidence above 0.9.

This is the MNIST-scale stand-in researchers use where Inception weights are out of reach
(Heusel et al. 2017 define FID on Inception-v3 pool features; the formula is the same, the
feature network is not). Its numbers compare runs and samplers *with each other* on
digits; they are not comparable with published FIDs (another network, another data set,
8x8 pixels, a few hundred samples).

Input: images in the data's raw scale, pixels in [0, 1] (what ``Dataset.to_raw`` gives
for the ``digits`` source), any resolution and 1 or 3 channels: they are clipped to
[0, 1], averaged to grey and area-resized to 8x8, the classifier's training input.
The weights ship as ``studio.resources/digits_classifier.safetensors`` (found with
importlib.resources, so the file moves with the package data).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.errors import StudioError
from ..core.metrics import frechet_distance

WEIGHTS_NAME = "digits_classifier.safetensors"
SIDE = 8  # scikit-learn's digits are 8x8
FEATURES = 32  # width of the penultimate layer
CONFIDENT = 0.9  # the "classified with confidence" threshold
SPLIT_SEED, HELD_OUT = 1234, 0.2  # the classifier never saw this 20 % of the digits


class DigitsClassifier(nn.Module):
    """conv 16 - conv 32 - pool - conv 32 - linear 32 (features) - linear 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.hidden = nn.Linear(32 * (SIDE // 2) ** 2, FEATURES)
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations (B, FEATURES) of grey 8x8 images in [0, 1]."""
        h = F.relu(self.conv1(x * 2.0 - 1.0))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.conv3(h))
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def weights_resource() -> Any:
    """The shipped weights as an importlib.resources Traversable."""
    return resources.files("studio.resources") / WEIGHTS_NAME


@functools.lru_cache(maxsize=4)
def load_classifier(path: str | None = None) -> DigitsClassifier:
    """The classifier with the shipped weights (or those in ``path``), in eval mode."""
    from safetensors.torch import load

    source = Path(path) if path is not None else weights_resource()
    try:
        state = load(source.read_bytes())
    except (OSError, FileNotFoundError) as exc:
        raise StudioError(f"digits classifier weights {source} cannot be read: {exc}") from None
    except Exception as exc:  # safetensors raises its own error type for a corrupt file
        raise StudioError(f"digits classifier weights {source} are not valid safetensors: {exc}") from None
    model = DigitsClassifier()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise StudioError(f"digits classifier weights {source} do not fit the network: {exc}") from None
    return model.eval()


def to_classifier_input(images: Any) -> Tensor:
    """Raw-scale images (N, C, H, W) in [0, 1] -> grey (N, 1, 8, 8) float32."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.dim() != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
        raise StudioError(f"the digits metric needs images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
    x = x.clamp(0.0, 1.0).mean(1, keepdim=True)
    if tuple(x.shape[2:]) != (SIDE, SIDE):
        x = F.adaptive_avg_pool2d(x, SIDE)
    return x


def features_and_probs(images: Any, model: DigitsClassifier | None = None, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, FEATURES) float64, class probabilities (N, 10)) of raw-scale images."""
    model = model or load_classifier()
    x = to_classifier_input(images)
    feats, probs = [], []
    with torch.no_grad():
        for chunk in torch.split(x, batch):
            f = model.features(chunk)
            feats.append(f.double())
            probs.append(torch.softmax(model.head(f), 1).double())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def digits_split() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """((train images, labels), (held-out images, labels)) of the classifier: the studio's
    ``digits`` source in raw scale (N, 1, 8, 8) in [0, 1], permuted as ``Dataset.split``
    does with ``seed=SPLIT_SEED`` (kept here because the split drops the labels)."""
    from ..core.data import load_dataset

    ds = load_dataset("digits")
    labels = torch.as_tensor(ds.meta["labels"])
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = max(1, int(round(HELD_OUT * len(ds))))
    test, train = perm[:n_test], perm[n_test:]
    raw = torch.as_tensor(ds.to_raw(ds.data))
    return (raw[train], labels[train]), (raw[test], labels[test])


def confident_fraction(probs: np.ndarray, threshold: float = CONFIDENT) -> float:
    """Fraction of images whose most likely class has probability above ``threshold``."""
    return float((np.asarray(probs).max(1) > threshold).mean())


def digits_scores(samples: Any, reference: Any, model: DigitsClassifier | None = None) -> dict[str, float]:
    """``frechet_digits`` (Frechet distance of the classifier's features, samples vs
    reference) and ``confident`` (fraction of samples classified with p > 0.9); both
    inputs raw-scale images."""
    f_s, p_s = features_and_probs(samples, model)
    f_r, _ = features_and_probs(reference, model)
    return {"frechet_digits": frechet_distance(f_s, f_r), "confident": confident_fraction(p_s)}

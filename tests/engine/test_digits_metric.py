"""The digits feature metric: the shipped classifier, the Frechet distance of its
features, and the confident fraction, on held-out digits, noise and a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.errors import StudioError
from studio.engine import digits_metric
from studio.engine.digits_metric import confident_fraction, digits_scores, digits_split, features_and_probs, load_classifier


@pytest.fixture(scope="module")
def held_out():
    return digits_split()[1]


def test_shipped_weights_are_small_and_classify_held_out_digits(held_out):
    weights = digits_metric.weights_resource()
    assert weights.is_file() and len(weights.read_bytes()) < 400_000
    images, labels = held_out
    feats, probs = features_and_probs(images)
    assert feats.shape == (len(images), digits_metric.FEATURES) and probs.shape == (len(images), 10)
    assert (probs.argmax(1) == labels.numpy()).mean() > 0.95  # never trained on these
    assert confident_fraction(probs) > 0.85


def test_held_out_against_itself_is_near_zero_and_noise_is_far(held_out):
    images, _ = held_out
    half = len(images) // 2
    same = digits_scores(images[:half], images[half:])
    noise = digits_scores(torch.rand(half, 1, 8, 8, generator=torch.Generator().manual_seed(0)), images[half:])
    blurred = digits_scores(torch.nn.functional.avg_pool2d(images[:half], 3, 1, 1), images[half:])
    assert same["frechet_digits"] < 0.05 * noise["frechet_digits"]
    assert same["frechet_digits"] < 0.05 * blurred["frechet_digits"]
    assert same["confident"] > noise["confident"] + 0.2 and same["confident"] > blurred["confident"] + 0.2


def test_inputs_at_other_resolutions_and_channels_score_alike(held_out):
    images, _ = held_out
    big = torch.nn.functional.interpolate(images, scale_factor=2, mode="nearest").repeat(1, 3, 1, 1)
    a, b = features_and_probs(images)[0], features_and_probs(big)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_input_and_bad_weights_are_named(tmp_path):
    with pytest.raises(StudioError, match=r"\(N, 1 or 3, H, W\)"):
        features_and_probs(np.zeros((4, 2, 8, 8)))
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(StudioError, match="w.safetensors"):
        load_classifier(str(bad))


@pytest.mark.slow
def test_a_trained_model_ranks_between_held_out_and_noise(held_out, quick_digits_run):
    """quick_digits as the CLI trains it (800 steps, shared with tests/test_cli.py).
    Measured: Frechet held-out 13.3 < model 57.6 < noise 1753; confident 0.58 vs 0.0."""
    from studio.engine.events import Finished
    from studio.engine.jobs import sample_job

    images, _ = held_out
    half = len(images) // 2
    result = None
    for event in sample_job(quick_digits_run.path, sampler="ddim", steps=50, n=half, records=False):
        if isinstance(event, Finished):
            result = event.result
    model = digits_scores(result["samples"], images[half:])
    same = digits_scores(images[:half], images[half:])
    noise = digits_scores(torch.rand(half, 1, 8, 8, generator=torch.Generator().manual_seed(0)), images[half:])
    assert same["frechet_digits"] < model["frechet_digits"] < noise["frechet_digits"]
    assert model["confident"] > noise["confident"]

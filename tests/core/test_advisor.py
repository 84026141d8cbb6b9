"""The schedule advisor: Song & Ermon 2020's techniques 1-2 and the VP end points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.core import advisor as A
from studio.core.data import load_dataset
from studio.core.data.base import Dataset
from studio.core.methods import VDM
from studio.core.schedules import make_schedule


def points(x):
    x = torch.as_tensor(x, dtype=torch.float32)
    return Dataset("test", x, "points", torch.zeros(()), torch.ones(()))


@pytest.mark.parametrize("dim", [2, 5])
def test_max_pairwise_distance_is_exact(dim):
    x = torch.randn(700, dim, generator=torch.Generator().manual_seed(dim)) * torch.linspace(0.5, 2, dim)
    got, used = A.max_pairwise_distance(x)
    assert used == 700
    assert got == pytest.approx(float(torch.cdist(x.double(), x.double()).max()), rel=1e-9)


def test_geometric_ratio_reproduces_song_and_ermon_cifar10():
    """CIFAR-10 (D = 3072): sigma 50 -> 0.01 in L = 232 levels (their table 2), ratio 1.0376."""
    ratio = A.geometric_ratio(3072)
    assert A.shell_overlap(ratio, 3072) == pytest.approx(0.5, abs=1e-9)
    assert 1.03 < ratio < 1.05
    levels = math.log(50 / 0.01) / math.log(ratio) + 1
    assert abs(levels - 232) / 232 < 0.1
    assert A.shell_overlap(1.0376, 3072) == pytest.approx(0.5, abs=0.1)
    assert A.geometric_ratio(2) is None  # no ratio brings a 2-D shell overlap down to 1/2


def test_lambda_max_decodes_8bit_data_into_the_wrong_bin_one_time_in_a_thousand():
    lam = A.lambda_max_for(2 / 255)
    assert abs(lam - 13.3) < 0.3  # VDM's gamma_min = -13.3 for 8-bit images
    g = torch.Generator().manual_seed(0)
    n = 400_000
    k = torch.randint(0, 256, (n,), generator=g)
    x = k / 127.5 - 1
    alpha, sigma = math.sqrt(1 / (1 + math.exp(-lam))), math.sqrt(1 / (1 + math.exp(lam)))
    z = alpha * x.double() + sigma * torch.randn(n, generator=g, dtype=torch.float64)
    decoded = ((z / alpha + 1) * 127.5).round().clamp(0, 255).long()
    wrong = float((decoded != k).double().mean())
    # interior values can err both ways; 0 and 255 only one way (clamped)
    assert wrong == pytest.approx(1e-3 * (1 - 1 / 256), rel=0.12)


def test_lambda_min_gives_the_prior_kl_budget_through_vdm():
    ds = load_dataset("digits")
    advice = A.advise(ds, make_schedule("vdm_fixed"))
    lam_min = advice.value("lambda_min")
    vdm = VDM(advice.schedule)
    bits = float(vdm.prior_loss(ds.data).mean()) / (ds.dim * math.log(2))
    assert bits == pytest.approx(1e-3, rel=1e-3)
    assert advice.schedule.params()["gamma_max"] == pytest.approx(-lam_min)
    # digits have 17 grey levels: a bin of 2/16, so far less SNR is needed than for 8 bits
    assert advice.value("lambda_max") == pytest.approx(A.lambda_max_for(2 / 16))
    assert advice.value("lambda_max") < 9


def test_ve_advice_on_digits_and_a_toy_set():
    ds = load_dataset("digits")
    advice = A.advise(ds, make_schedule("geometric", steps=50, sigma_max=10.0, sigma_min=0.01))
    flat = ds.data.reshape(len(ds), -1).double()
    assert advice.value("sigma_max") == pytest.approx(float(torch.cdist(flat, flat).max()), rel=1e-9)
    ratio = advice.value("ratio")
    assert A.shell_overlap(ratio, 64) == pytest.approx(0.5, abs=1e-9)
    s = advice.schedule
    assert s.family == "geometric" and s.sigma_max == pytest.approx(advice.value("sigma_max"))
    assert s.steps == advice.value("steps")
    assert (s.sigmas[:-1] / s.sigmas[1:]).max() <= ratio * (1 + 1e-9)  # no gap wider than the ratio

    toy = load_dataset("toy", name="8gaussians", n=4000)
    advice = A.advise(toy, make_schedule("geometric", steps=50, sigma_max=5.0))
    x = toy.data.double()
    assert advice.value("sigma_max") == pytest.approx(float(torch.cdist(x, x).max()), rel=1e-9)
    assert advice.schedule.steps == 50 and any("D = 2" in n for n in advice.notes)


def test_vp_advice_builds_schedules_of_the_same_family():
    x = torch.randn(3000, 2, generator=torch.Generator().manual_seed(0))
    ds = points(x)
    linear = A.advise(ds, make_schedule("linear", steps=200))
    lam = linear.schedule.log_snr_steps
    assert linear.schedule.family == "linear"
    assert float(lam[0]) == pytest.approx(linear.value("lambda_max"), abs=0.02)
    assert float(lam[-1]) == pytest.approx(linear.value("lambda_min"), abs=0.02)
    cosine = A.advise(ds, make_schedule("cosine", steps=200))
    assert cosine.schedule.family == "custom" and cosine.notes
    c = cosine.schedule.log_snr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    np.testing.assert_allclose(c.numpy(), [cosine.value("lambda_max"), cosine.value("lambda_min")], atol=1e-9)
    d = cosine.to_dict()
    assert {s["key"] for s in d["suggestions"]} >= {"lambda_max", "lambda_min"} and all(s["reason"] for s in d["suggestions"])

"""Property test (hypothesis): a config survives TOML -> Config -> TOML exactly, as
written by the app's form and as resolved into a run's config.toml (every default
written out), whatever valid values it holds (floats to the last bit, any text)."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.engine.config import parse_config, resolve

positive = st.floats(1e-300, 1e300, allow_nan=False, allow_infinity=False)
count = st.integers(1, 2**31)


@st.composite
def configs(draw):
    data = draw(st.one_of(
        st.fixed_dictionaries({"source": st.just("toy"), "name": st.sampled_from(["swiss_roll", "moons", "8gaussians"])},
                              optional={"n": count, "seed": st.integers(0, 2**31), "held_out": st.floats(0.0, 0.49),
                                        "normalisation": st.sampled_from(["default", "unit_max", "none"])}),
        st.fixed_dictionaries({"source": st.sampled_from(["array", "hdf5"]), "path": st.text(min_size=1)},
                              optional={"key": st.text(min_size=1), "limit": count, "channels": st.sampled_from([1, 3])}),
    ))
    schedule = draw(st.fixed_dictionaries({"family": st.just("linear")}, optional={
        "steps": st.integers(1, 5000), "beta_start": st.floats(1e-6, 0.01), "beta_end": st.floats(0.011, 0.05)}))
    train = draw(st.fixed_dictionaries({}, optional={
        "steps": count, "batch_size": count, "lr": positive, "seed": st.integers(0, 2**31), "warmup": st.integers(0, 10**6),
        "grad_clip": st.floats(0, 1e6), "ema_decay": st.floats(0, 0.999999), "device": st.sampled_from(["auto", "cpu", "cuda"]),
        "amp": st.booleans(), "log_every": count, "preview_every": st.integers(0, 10**6)}))
    network = draw(st.fixed_dictionaries({"kind": st.just("mlp")}, optional={"hidden": st.integers(1, 4096), "depth": st.integers(1, 16)}))
    sample = draw(st.fixed_dictionaries({}, optional={"sampler": st.sampled_from(["ancestral", "ddim"]), "n": count, "seed": st.integers(0, 2**31)}))
    return {"data": data, "schedule": schedule, "method": {"name": "ddpm"}, "network": network, "train": train, "sample": sample}


class Points:
    kind = "points"


@settings(max_examples=40, deadline=None)
@given(configs())
def test_toml_config_toml_is_exact(raw):
    cfg = parse_config(raw)
    text = cfg.to_toml()
    again = parse_config(tomllib.loads(text))
    assert again.to_dict() == cfg.to_dict()
    assert again.to_toml() == text
    resolved = resolve(cfg, Points())
    text = resolved.to_toml()
    back = parse_config(tomllib.loads(text))
    assert back.to_dict() == {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in resolved.to_dict().items()}
    assert back.to_toml() == text

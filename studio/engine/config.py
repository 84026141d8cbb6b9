"""The TOML config of a run (docs/DESIGN.md 3): sections ``data``, ``schedule``, ``method``,
``network``, ``train``, ``sample``.

Keys of ``data``, ``schedule``, ``method`` and ``network`` are the parameters of the
registered loader / schedule / method / network factory they name (checked against its
signature, so a plugin's options work with no change here); ``train`` and ``sample``
keys are listed below. Unknown keys and bad values raise ``ConfigError`` naming
``[section] key``, the value and what is allowed. ``resolve`` fills every default in, so
the ``config.toml`` a run stores says exactly what ran.
"""

from __future__ import annotations

import copy
import inspect
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core import data as core_data
from ..core import methods as _methods  # noqa: F401  (register the methods)
from ..core import networks as _networks  # noqa: F401  (register the networks)
from ..core import samplers as _samplers  # noqa: F401  (register the samplers)
from ..core.data.normalise import NORMALISATIONS, normalise
from ..core.errors import ConfigError, StudioError
from ..core.registry import DATASETS, METHODS, NETWORKS, SAMPLERS, SCHEDULES

SECTIONS = ("data", "schedule", "method", "network", "train", "sample")


@dataclass(frozen=True)
class Key:
    default: Any
    kind: type  # int, float, bool, str
    check: Callable[[Any], bool] = lambda v: True
    allowed: str = ""  # says what ``check`` accepts, for the error message


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


TRAIN_KEYS: dict[str, Key] = {
    "steps": Key(5000, int, _at_least(1), "an integer >= 1"),
    "batch_size": Key(512, int, _at_least(1), "an integer >= 1"),
    "lr": Key(1e-3, float, lambda v: 0 < v < math.inf, "a number > 0"),
    "seed": Key(0, int, _at_least(0), "an integer >= 0"),
    "warmup": Key(100, int, _at_least(0), "an integer >= 0 (steps of linear LR warm-up)"),
    "grad_clip": Key(1.0, float, _at_least(0), "a number >= 0 (0 = off)"),
    "weight_decay": Key(0.0, float, _at_least(0), "a number >= 0"),
    "ema_decay": Key(0.999, float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    # the EMA is updated every k steps with decay**k (core.ema): off the step's path
    "ema_every": Key(10, int, _at_least(1), "an integer >= 1 (steps between EMA updates)"),
    "log_every": Key(10, int, _at_least(1), "an integer >= 1 (metrics rows are flushed this often)"),
    "checkpoint_every": Key(1000, int, _at_least(1), "an integer >= 1"),
    "keep_checkpoints": Key(3, int, _at_least(1), "an integer >= 1"),
    "preview_every": Key(500, int, _at_least(0), "an integer >= 0 (0 = no previews)"),
    "preview_n": Key(64, int, _at_least(1), "an integer >= 1"),
    "preview_steps": Key(50, int, _at_least(1), "an integer >= 1"),
    "device": Key("auto", str, lambda v: v in ("auto", "cpu", "cuda"), "one of auto, cpu, cuda"),
    "amp": Key(True, bool, allowed="true or false (mixed precision, CUDA only)"),
    "threads": Key(0, int, _at_least(0), "an integer >= 0 (0 = torch's default)"),
    # also write RUN/tensorboard/ (engine.tensorboard_sink); metrics.jsonl stays the source of truth
    "tensorboard": Key(False, bool, allowed="true or false (needs the tensorboard extra)"),
}

SAMPLE_KEYS: dict[str, Key] = {
    "sampler": Key(None, str),  # default: ancestral; checked against SAMPLERS
    "steps": Key(None, int, _at_least(1), "an integer >= 1"),  # default: the schedule's steps
    "n": Key(64, int, _at_least(1), "an integer >= 1"),
    "seed": Key(0, int, _at_least(0), "an integer >= 0"),
}

DATA_ENGINE_KEYS: dict[str, Key] = {
    "source": Key("toy", str),
    "held_out": Key(0.1, float, lambda v: 0 <= v < 0.5, "a number in [0, 0.5)"),
    # the Data panel's choice, applied after loading (core.data.normalise)
    "normalisation": Key("default", str, lambda v: v in NORMALISATIONS, "one of " + ", ".join(NORMALISATIONS)),
}
# types of loader parameters whose default is None (so the signature cannot tell)
DATA_TYPES = {"path": str, "key": str, "labels": str, "name": str, "resolution": int, "channels": int, "limit": int, "n": int, "seed": int}
RUNTIME_DATA = ("progress", "cancelled")

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}


@dataclass
class Config:
    data: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file it came from, for messages

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: copy.deepcopy(getattr(self, s)) for s in SECTIONS}

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps({s: _plain(v) for s, v in self.to_dict().items() if v})

    def copy(self) -> "Config":
        return Config(**self.to_dict(), source=self.source)


def _plain(value: Any) -> Any:
    """TOML has no None and no tuples."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


# -------------------------------------------------------------------------------------
# reading
# -------------------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], source: str | None = None) -> Config:
    """Check every section and key (without reading data files) and return a Config
    with the given values; ``resolve`` fills in the defaults."""
    if not isinstance(raw, dict):
        raise ConfigError("a config is a table of sections: " + ", ".join(SECTIONS))
    for name, section in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section [{name}]; allowed: {', '.join(SECTIONS)}")
        if not isinstance(section, dict):
            raise ConfigError(f"config [{name}] must be a table of keys, got {section!r}")
    cfg = Config(**{s: dict(raw.get(s, {})) for s in SECTIONS}, source=source)
    _check_fixed("train", cfg.train, TRAIN_KEYS)
    _check_data(cfg.data)
    method_name = _check_name("method", "name", cfg.method.get("name", "ddpm"), METHODS)
    _check_factory("method", cfg.method, METHODS.get(method_name), skip=("schedule",), name_key="name")
    family = _check_name("schedule", "family", cfg.schedule.get("family", default_schedule(method_name)), SCHEDULES)
    _check_factory("schedule", cfg.schedule, SCHEDULES.get(family), name_key="family")
    if "kind" in cfg.network:
        kind = _check_name("network", "kind", cfg.network["kind"], NETWORKS)
        _check_factory("network", cfg.network, NETWORKS.get(kind), skip=("data_shape",), name_key="kind")
    _check_sample(cfg.sample)
    return cfg


def _type_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list)
    return isinstance(value, kind)


def _bad(section: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"[{section}] {key} = {value!r}: expected {allowed}")


def _check_value(section: str, key: str, value: Any, spec: Key) -> Any:
    if not _type_ok(value, spec.kind):
        raise _bad(section, key, value, spec.allowed or _TYPE_WORDS[spec.kind])
    if spec.kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise _bad(section, key, value, spec.allowed or "a finite number")
    if not spec.check(value):
        raise _bad(section, key, value, spec.allowed)
    return value


def _check_fixed(section: str, values: dict[str, Any], keys: dict[str, Key], extra: tuple[str, ...] = ()) -> None:
    for key, value in list(values.items()):
        if key in extra:
            continue
        if key not in keys:
            allowed = ", ".join([*keys, *extra])
            raise ConfigError(f"unknown key [{section}] {key} = {value!r}; allowed: {allowed}")
        values[key] = _check_value(section, key, value, keys[key])


def _check_name(section: str, key: str, value: Any, registry: Any) -> str:
    if not isinstance(value, str) or value not in registry:
        raise ConfigError(f"[{section}] {key} = {value!r}; allowed: {', '.join(registry.names())}")
    return value


def _signature_defaults(factory: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    params = inspect.signature(factory).parameters
    return {
        n: p.default
        for n, p in params.items()
        if n not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _check_factory(section: str, values: dict[str, Any], factory: Any, skip: tuple[str, ...] = (), name_key: str = "") -> None:
    """Keys must be parameters of ``factory``; a value's type must match its default's."""
    defaults = _signature_defaults(factory, skip)
    for key, value in list(values.items()):
        if key == name_key:
            continue
        if key not in defaults:
            allowed = ", ".join([name_key, *defaults] if name_key else defaults)
            raise ConfigError(f"unknown key [{section}] {key} = {value!r}; allowed: {allowed}")
        default = defaults[key]
        if default is inspect.Parameter.empty or default is None:
            continue
        kind = list if isinstance(default, (tuple, list)) else type(default)
        if kind in _TYPE_WORDS and not _type_ok(value, kind):
            raise _bad(section, key, value, f"{_TYPE_WORDS[kind]} (default {_plain(default)!r})")


def _check_data(values: dict[str, Any]) -> None:
    source = values.get("source", "toy")
    for key in DATA_ENGINE_KEYS:
        if key in values:
            values[key] = _check_value("data", key, values[key], DATA_ENGINE_KEYS[key])
    if source == "toy":
        name = values.get("name")
        if name not in core_data.toy_names():
            raise ConfigError(f"[data] name = {name!r} for source 'toy'; allowed: {', '.join(core_data.toy_names())}")
        factory = DATASETS.get(name)
    elif source in DATASETS:
        factory = DATASETS.get(source)
    else:
        toys = set(core_data.toy_names())
        allowed = ["toy", *[n for n in DATASETS.names() if n not in toys]]
        raise ConfigError(f"[data] source = {source!r}; allowed: {', '.join(allowed)}")
    params = [p for p in _signature_defaults(factory) if p not in RUNTIME_DATA]
    if "n" in params or "limit" in params:  # the two stand for each other (core.data)
        params += [a for a in ("n", "limit") if a not in params]
    extra = ("name",) if source == "toy" else ()
    for key, value in values.items():
        if key in DATA_ENGINE_KEYS or key in extra:
            continue
        if key not in params:
            raise ConfigError(
                f"unknown key [data] {key} = {value!r} for source {source!r}; "
                f"allowed: {', '.join(['source', *extra, *params, 'held_out', 'normalisation'])}"
            )
        kind = DATA_TYPES.get(key)
        if kind is not None and not _type_ok(value, kind):
            raise _bad("data", key, value, _TYPE_WORDS[kind])


def _check_sample(values: dict[str, Any]) -> None:
    sampler_name = values.get("sampler")
    if sampler_name is not None:
        _check_name("sample", "sampler", sampler_name, SAMPLERS)
    options = SAMPLERS.get(sampler_name).defaults if sampler_name else {}
    for key, value in values.items():
        if key in SAMPLE_KEYS:
            if value is not None and key != "sampler":
                values[key] = _check_value("sample", key, value, SAMPLE_KEYS[key])
        elif key not in options:
            allowed = [*SAMPLE_KEYS, *options]
            raise ConfigError(
                f"unknown key [sample] {key} = {value!r}; allowed: {', '.join(allowed)}"
                + ("" if sampler_name else " (and the options of the chosen sampler)")
            )
        else:
            default = options[key]
            if default is not None and not isinstance(default, str) and not _type_ok(value, type(default)):
                raise _bad("sample", key, value, f"{_TYPE_WORDS.get(type(default), type(default).__name__)} (sampler {sampler_name!r})")


def default_schedule(method_name: str) -> str:
    """The first registered schedule made for this family (registry meta ``kind``)."""
    for name in SCHEDULES.names():
        if SCHEDULES.entry(name).meta.get("kind") == method_name:
            return name
    return SCHEDULES.names()[0]


def default_network(data_kind: str) -> str:
    for name in NETWORKS.names():
        meta = NETWORKS.entry(name).meta
        if data_kind in (meta.get("kind"), meta.get("data")):
            return name
    raise ConfigError(f"no registered network takes {data_kind}; registered: {', '.join(NETWORKS.names())}")


# -------------------------------------------------------------------------------------
# building
# -------------------------------------------------------------------------------------


def _prefixed(section: str, exc: StudioError) -> StudioError:
    message = str(exc)
    if message.startswith(f"[{section}]"):
        return exc
    return type(exc)(f"[{section}] {message}")


def load_data(cfg: Config, **runtime: Any):
    """The dataset the ``[data]`` section describes (whole, before the held-out split)."""
    options = {k: v for k, v in cfg.data.items() if k not in DATA_ENGINE_KEYS}
    try:
        dataset = core_data.load_dataset(cfg.data.get("source", "toy"), **options, **runtime)
        return normalise(dataset, cfg.data.get("normalisation", "default"))
    except StudioError as exc:
        raise _prefixed("data", exc) from None


def schedule_from_section(section: dict[str, Any], method_name: str = "ddpm"):
    """The schedule a ``[schedule]`` section describes (``family`` defaults to the
    method's); the one place a config section becomes a Schedule (training, a run's
    curve, the app's form). Errors are ``StudioError``s naming ``[schedule]``."""
    from ..core.schedules import make_schedule

    family = section.get("family") or default_schedule(method_name)
    try:
        return make_schedule(family, **{k: v for k, v in section.items() if k != "family"})
    except StudioError as exc:
        raise _prefixed("schedule", exc) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[schedule] family {family!r}: {exc}") from None


def build_method(cfg: Config):
    """The method with its schedule (cheap: no network); errors name the section."""
    method_name = cfg.method.get("name", "ddpm")
    schedule = schedule_from_section(cfg.schedule, method_name)
    try:
        return METHODS.get(method_name)(schedule, **{k: v for k, v in cfg.method.items() if k != "name"})
    except StudioError as exc:
        raise _prefixed("method", exc) from None


def build_model(cfg: Config, data_shape: tuple[int, ...], data_kind: str):
    """(method, net) for a resolved or partial config; errors name the section."""
    method = build_method(cfg)
    kind = cfg.network.get("kind") or default_network(data_kind)
    try:
        net = NETWORKS.get(kind)(tuple(data_shape), **{k: v for k, v in cfg.network.items() if k != "kind"})
    except StudioError as exc:
        raise _prefixed("network", exc) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[network] kind {kind!r}: {exc}") from None
    return method, method.wrap_network(net)


def resolve(cfg: Config, dataset: Any) -> Config:
    """A copy with every default written out (what the run stores as config.toml)."""
    out = cfg.copy()
    out.data = {**{k: s.default for k, s in DATA_ENGINE_KEYS.items()}, **out.data}
    method_name = out.method.setdefault("name", "ddpm")
    out.method = {"name": method_name, **_plain_defaults(METHODS.get(method_name), ("schedule",)), **out.method}
    family = out.schedule.setdefault("family", default_schedule(method_name))
    out.schedule = {"family": family, **_plain_defaults(SCHEDULES.get(family)), **out.schedule}
    kind = out.network.setdefault("kind", default_network(dataset.kind))
    out.network = {"kind": kind, **_plain_defaults(NETWORKS.get(kind), ("data_shape",)), **out.network}
    out.train = {**{k: s.default for k, s in TRAIN_KEYS.items()}, **out.train}
    sampler = out.sample.get("sampler") or "ancestral"
    steps = out.sample.get("steps") or int(out.schedule.get("steps", 1000))
    options = {k: v for k, v in SAMPLERS.get(sampler).defaults.items() if v is not None}
    out.sample = {**{k: s.default for k, s in SAMPLE_KEYS.items()}, **options, **out.sample, "sampler": sampler, "steps": steps}
    return out


def _plain_defaults(factory: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in _signature_defaults(factory, skip).items()
        if v is not inspect.Parameter.empty and v is not None and isinstance(v, (bool, int, float, str, tuple, list))
    }


def build(cfg: Config):
    """(dataset, method, net) from a config; the net's initial weights follow train.seed."""
    from ..core.seeding import seed_everything

    dataset = load_data(cfg)
    seed_everything(int(cfg.train.get("seed", 0)))
    method, net = build_model(cfg, dataset.shape, dataset.kind)
    return dataset, method, net


def sampler_options(cfg: Config) -> dict[str, Any]:
    """The ``[sample]`` keys that are options of its sampler."""
    sampler = SAMPLERS.get(cfg.sample.get("sampler") or "ancestral")
    return {k: v for k, v in cfg.sample.items() if k in sampler.defaults}


def with_data_range(sampler: str, options: dict[str, Any], data_kind: str) -> dict[str, Any]:
    """Images live in [-1, 1]: a sampler that takes ``clip_x0`` clips x0_hat there unless
    the options set it (0 = off); Ho et al. 2020 and diffusers' ``clip_sample`` do the
    same. Points have no known range: off unless asked for."""
    if data_kind == "images" and "clip_x0" in SAMPLERS.get(sampler).defaults and options.get("clip_x0") is None:
        return {**options, "clip_x0": 1.0}
    return options

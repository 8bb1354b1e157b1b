"""One :class:`RunConfig` from defaults < YAML file < ``--set key=value`` < typed values (flags).

YAML values are coerced to each field's annotated type; unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from headstart.config.sections import (
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    PreprocessConfig,
    StrategyConfig,
    TaskConfig,
    TrainConfig,
)
from headstart.errors import HeadstartError
from headstart.registry import closest, unknown_choice


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        return _build(cls, raw, "")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))  # data, task, preprocess, ... (`--config` help)

# a decimal or scientific number: YAML 1.1 reads 1e-3 (no dot in the mantissa) as a string
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type, with an error that names the key.

    A float field takes numbers and numeric-looking strings (``lr: 1e-3``); a text field takes only text,
    so ``source: yes`` (YAML's true) or ``source: 007`` (YAML's 7) is refused instead of becoming ``'True'``.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise HeadstartError(f"config section {key!r} must be a mapping, got {value!r}")
        return _build(tp, value, key + ".")  # type: ignore[arg-type]
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise HeadstartError(f"{key} must be a list like [1, 2, 3], got {value!r}")
        return [_coerce(v, inner, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise HeadstartError(f"{key} must be true or false, got {value!r}")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if tp is str and value is not None:
        raise HeadstartError(
            f"{key} must be text, got {value!r} (YAML reads yes/no/on/off as true/false and bare digits as "
            f"numbers); put the value in quotes as you mean it, e.g. {key.rsplit('.', 1)[-1]}: 'yes' or '007'"
        )
    raise HeadstartError(f"{key} must be of type {getattr(tp, '__name__', tp)}, got {value!r}")


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    types_ = _field_types(cls)
    _check_keys([prefix + str(k) for k in raw], [prefix + k for k in types_])
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in raw.items()}
    return cls(**kwargs)


def _check_keys(given: list[str], valid: list[str], kind: str = "config key") -> None:
    """Refuse unknown keys: one with a did-you-mean suggestion, several each with theirs."""
    unknown = sorted(set(given) - set(valid))
    if len(unknown) == 1:
        raise unknown_choice(kind, unknown[0], valid)
    if unknown:
        named = [k + (f" (did you mean {m}?)" if (m := closest(k, valid)) else "") for k in unknown]
        raise HeadstartError(f"unknown {kind}s {', '.join(named)}; known: {', '.join(valid)}")


def _key_types() -> dict[str, Any]:
    """Every ``section.key`` with its annotated type."""
    return {
        f"{section}.{name}": tp
        for section, section_tp in _field_types(RunConfig).items()
        for name, tp in _field_types(section_tp).items()
    }


def _is_text(tp: Any) -> bool:
    """``str`` or ``str | None``: a field whose ``--set`` value is taken as typed, not read as YAML."""
    return tp is str or set(typing.get_args(tp)) == {str, type(None)}


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw config dict.

    Text fields keep the text as typed where YAML would read something else: ``data.source=007`` is
    ``'007'``, ``data.source=yes`` is ``'yes'``; ``null`` still clears an optional field.
    """
    types_ = _key_types()
    for item in overrides:
        if "=" not in item:
            raise HeadstartError(f"--set {item!r} must look like section.key=value, e.g. optim.lr=1e-3")
        key, text = item.split("=", 1)
        key = key.strip()
        _check_keys([key], list(types_), kind="--set key")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise HeadstartError(f"--set {key}: cannot parse value {text!r} ({exc})") from exc
        if _is_text(types_[key]) and value is not None and not isinstance(value, str):
            value = text.strip()
        _put(raw, key, value)
    return raw


def apply_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Apply already-typed ``{"section.key": value}`` settings (command-line flags) to a raw config dict."""
    _check_keys(list(values), list(_key_types()))
    for key, value in values.items():
        _put(raw, key, value)
    return raw


def _put(raw: dict[str, Any], key: str, value: Any) -> None:
    section, name = key.split(".", 1)
    if not isinstance(raw.setdefault(section, {}), dict):
        raise HeadstartError(f"config section {section!r} must be a mapping, got {raw[section]!r}")
    raw[section][name] = value


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, values: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults < YAML file < ``--set`` overrides (YAML-parsed strings) < ``values`` (typed, e.g. flags),
    validated into a :class:`RunConfig`."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise HeadstartError(f"config file {str(p)!r} does not exist; pass an existing YAML file to --config")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise HeadstartError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise HeadstartError(f"config file {str(p)!r} must hold a mapping of sections")
        raw = loaded
    raw = apply_overrides(raw, overrides or [])
    raw = apply_values(raw, values or {})
    return RunConfig.from_dict(raw)


# the config keys each command-line flag (and Python API argument) sets
FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "backbone": ("model.backbone",),
    "weights": ("model.weights",),
    "strategy": ("strategy.name",),
    "task": ("task.kind",),
    "epochs": ("train.epochs",),
    "seed": ("data.seed", "train.seed"),
    "limit": ("data.limit_per_class",),
    "class_weights": ("optim.class_weights",),
    "log": ("train.log",),
    "sampler": ("data.sampler",),
    "target": ("data.target",),
}


def flag_values(data: str, **flags: object) -> dict[str, object]:
    """DATA and the given flags (None: unset) as typed config values: ``yes`` stays the text 'yes', 007 stays '007'.

    >>> flag_values("007", seed=3, epochs=None)
    {'data.source': '007', 'data.seed': 3, 'train.seed': 3}
    """
    values: dict[str, object] = {"data.source": data}
    for flag, value in flags.items():
        if value is not None:
            values.update(dict.fromkeys(FLAG_KEYS[flag], value))
    return values


def resolve_run_config(
    source: str,
    config: str | Path | RunConfig | None = None,
    sets: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    **flags: Any,
) -> RunConfig:
    """The one resolution of a run's config, for the CLI and the Python API alike: defaults < ``config``
    (a YAML file or a RunConfig) < ``sets`` (``--set`` strings) < ``settings`` (typed ``{"optim.lr": 3e-4}``)
    < the named flags (``backbone``, ``strategy``, ``epochs``, ``seed``, ...; None: unset).

    >>> resolve_run_config("builtin:elpv", settings={"optim.lr": 3e-4}, epochs=2).train.epochs
    2
    """
    values = {**(settings or {}), **flag_values(source, **flags)}
    if isinstance(config, RunConfig):
        raw = apply_values(apply_overrides(config.to_dict(), sets or []), values)
        return RunConfig.from_dict(raw)
    return load_config(config, sets or [], values)

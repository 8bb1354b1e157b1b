"""Typed run configuration: seven sections (``SECTIONS``), YAML in, ``--set key=value`` overrides, resolved dict out.

Every field has a comment; ``__post_init__`` validates values; unknown keys are errors that list
the valid ones. The fully resolved config is written into every run (``headstart.json``).
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

from headstart.errors import HeadstartError
from headstart.registry import closest, unknown_choice

__all__ = [
    "DataConfig",
    "PreprocessConfig",
    "ModelConfig",
    "StrategyConfig",
    "OptimConfig",
    "TrainConfig",
    "EvalConfig",
    "RunConfig",
    "load_config",
    "apply_overrides",
    "flag_values",
    "resolve_run_config",
    "apply_values",
    "check_seed",
    "SEED_LIMIT",
    "SECTIONS",
    "CLASS_WEIGHTS",
    "LOGS",
]

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
PRECISIONS = ("auto", "fp32", "bf16")
CLASS_WEIGHTS = ("none", "auto")  # optim.class_weights (--class-weights)
LOGS = ("jsonl", "tensorboard")  # train.log (--log)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise HeadstartError(msg)


SEED_LIMIT = 2**32  # numpy's RandomState takes seeds 0 .. 2**32 - 1 (torch takes more)


def check_seed(key: str, seed: int, count: int = 1) -> None:
    """Refuse a seed numpy cannot take; with ``count`` (``--seeds N``) the seeds seed .. seed+N-1 must all fit.

    ``check_seed("train.seed", 2**32)`` raises ``train.seed=4294967296 is out of range; ... must be 0..4294967295``.
    """
    top = SEED_LIMIT - count
    if 0 <= seed <= top:
        return
    if count > 1 and 0 <= seed < SEED_LIMIT:
        raise HeadstartError(
            f"--seeds {count} from {key}={seed} runs seeds up to {seed + count - 1}, past numpy's limit "
            f"{SEED_LIMIT - 1}; use a seed in 0..{top} or fewer --seeds"
        )
    raise HeadstartError(f"{key}={seed} is out of range; seeds (--seed, data.seed, train.seed) must be 0..{top}")


@dataclass
class DataConfig:
    source: str = ""  # folder, CSV / TSV / JSONL, or builtin:NAME
    text_column: str = "text"  # text data: the column (CSV / TSV) or key (JSONL) holding the text
    label_column: str = "label"  # text data: the column or key holding the class name
    sampler: str = "shuffle"  # shuffle (each example once per epoch) | balanced (classes drawn equally often)
    val_fraction: float = 0.15  # share of each class held out for model selection
    test_fraction: float = 0.15  # share of each class held out for the final metrics
    seed: int = 0  # seed of the stratified split
    limit_per_class: int | None = None  # keep at most this many examples per class (quick runs)

    def __post_init__(self) -> None:
        check_seed("data.seed", self.seed)
        _check(0 < self.val_fraction < 1, f"data.val_fraction={self.val_fraction} must be in (0, 1)")
        _check(self.sampler in ("shuffle", "balanced"), f"data.sampler={self.sampler!r}; choose shuffle or balanced")
        _check(0 < self.test_fraction < 1, f"data.test_fraction={self.test_fraction} must be in (0, 1)")
        _check(
            self.val_fraction + self.test_fraction < 0.9,
            "data.val_fraction + data.test_fraction must leave at least 10% for training",
        )
        _check(
            self.limit_per_class is None or self.limit_per_class >= 2,
            f"data.limit_per_class={self.limit_per_class} must be >= 2 (or null for all)",
        )


@dataclass
class PreprocessConfig:
    input_size: int | None = None  # square input side in pixels; null = the checkpoint's recipe
    crop_pct: float | None = None  # eval resize = input_size / crop_pct, then center crop; null = recipe
    interpolation: str | None = None  # bilinear | bicubic | nearest; null = recipe
    mean: list[float] | None = None  # per-channel normalization mean; null = recipe
    std: list[float] | None = None  # per-channel normalization std; null = recipe
    # Training augmentation (random resized crop + flips). Off by default: on the 5-epoch schedules
    # headstart targets it slowed convergence on both Fashion-MNIST and ELPV (bench/README.md); turn it
    # on for longer runs with preprocess.augment=true.
    augment: bool = False
    min_scale: float = 0.8  # smallest area fraction kept by the random resized crop (gentle: keeps small defects)
    vflip: bool = False  # also flip vertically (rotation-invariant data such as cells, tissue)
    max_length: int | None = None  # text: tokens per text after truncation; null = the checkpoint's recipe
    pooling: str | None = None  # text: mean | cls; null = how the checkpoint was trained

    def __post_init__(self) -> None:
        _check(self.input_size is None or 16 <= self.input_size <= 2048, "preprocess.input_size must be 16..2048")
        _check(self.crop_pct is None or 0.1 <= self.crop_pct <= 1.0, "preprocess.crop_pct must be in [0.1, 1]")
        _check(
            self.interpolation is None or self.interpolation in INTERPOLATIONS,
            f"preprocess.interpolation={self.interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}",
        )
        for name in ("mean", "std"):
            value = getattr(self, name)
            _check(
                value is None or (len(value) == 3 and all(isinstance(v, (int, float)) for v in value)),
                f"preprocess.{name} must be a list of 3 numbers, e.g. [0.5, 0.5, 0.5]",
            )
        _check(self.std is None or all(v > 0 for v in self.std), "preprocess.std values must be > 0")
        _check(0.05 <= self.min_scale <= 1.0, "preprocess.min_scale must be in [0.05, 1]")
        _check(self.max_length is None or 8 <= self.max_length <= 8192, "preprocess.max_length must be 8..8192")
        _check(
            self.pooling is None or self.pooling in ("mean", "cls"),
            f"preprocess.pooling={self.pooling!r}; choose mean or cls (or null for the checkpoint's)",
        )


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_lite0"  # catalog name (`headstart backbones`) or timm:<model_name>
    weights: str | None = None  # local checkpoint for timm:<name> (safetensors or a state dict)
    drop_rate: float = 0.2  # dropout before the classification head during training

    def __post_init__(self) -> None:
        _check(0.0 <= self.drop_rate < 1.0, "model.drop_rate must be in [0, 1)")


@dataclass
class StrategyConfig:
    name: str = "progressive"  # linear-probe | finetune | partial | progressive | plateau | lp-ft | scratch
    # ^ default by measurement (bench/README.md): best or tied-best on Fashion-MNIST and ELPV, and fastest
    backbone_lr_factor: float | None = None  # LR of the group just below the head = optim.lr x this factor
    # ^ null = the backbone's default: 0.3 for image CNNs, 0.05 for transformer text encoders (bench/)
    layer_decay: float = 1.0  # each group further from the head gets this factor more (1 = no decay)
    probe_cs: list[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    # ^ inverse L2 strengths tried by the linear probe (and lp-ft's probe); the best on validation is kept
    bn: str = "frozen"  # BatchNorm running statistics: frozen (never updated) | train (updated in trainable groups)
    train_groups: int = 3  # partial: train the last K layer groups (the head counts as one)
    groups: list[str] | None = None  # partial: train exactly these groups by name (overrides train_groups)
    unfreeze_every: float | None = None  # progressive: epochs between unfreezes; null = spread over the first half
    patience: int = 1  # plateau: epochs without validation improvement before the next group unfreezes
    unfreeze_warmup: float = 0.25  # epochs over which a newly unfrozen group's LR ramps from 0 to its value

    def __post_init__(self) -> None:
        _check(
            self.backbone_lr_factor is None or 0 < self.backbone_lr_factor <= 10,
            "strategy.backbone_lr_factor must be in (0, 10] (or null for the backbone's default)",
        )
        _check(0 < self.layer_decay <= 1, "strategy.layer_decay must be in (0, 1]")
        _check(len(self.probe_cs) > 0 and all(c > 0 for c in self.probe_cs), "strategy.probe_cs must be > 0")
        _check(self.bn in ("frozen", "train"), f"strategy.bn={self.bn!r}; choose frozen or train")
        _check(self.train_groups >= 1, "strategy.train_groups must be >= 1")
        _check(self.unfreeze_every is None or self.unfreeze_every > 0, "strategy.unfreeze_every must be > 0")
        _check(self.patience >= 1, "strategy.patience must be >= 1")
        _check(self.unfreeze_warmup >= 0, "strategy.unfreeze_warmup must be >= 0")


@dataclass
class OptimConfig:
    lr: float = 1e-3  # head learning rate (AdamW)
    weight_decay: float = 0.01  # on weights only; never on norms and biases
    warmup_fraction: float = 0.1  # share of all steps spent in linear warmup before the cosine decay
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    class_weights: str = "none"  # none | auto (loss weight per class = n / (classes x count), for imbalance)

    def __post_init__(self) -> None:
        _check(0 < self.lr < 1, f"optim.lr={self.lr} must be in (0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay must be >= 0")
        _check(0 <= self.warmup_fraction < 1, "optim.warmup_fraction must be in [0, 1)")
        _check(0 <= self.label_smoothing < 1, "optim.label_smoothing must be in [0, 1)")
        _check(
            self.class_weights in CLASS_WEIGHTS,
            f"optim.class_weights={self.class_weights!r}; choose {' or '.join(CLASS_WEIGHTS)}",
        )


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training split (fine-tuning strategies, scratch); measured in bench/
    batch_size: int = 32  # examples per optimizer step, and per extraction batch
    seed: int = 0  # seed of weight init, shuffling and augmentation
    precision: str = "auto"  # auto (bf16 where the hardware runs it fast) | fp32 | bf16
    channels_last: bool = True  # NHWC memory format: faster convolutions on CPU and GPU
    num_workers: int = 0  # DataLoader worker processes (0 = load in the main process)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log: str = "jsonl"  # jsonl (history.jsonl, always written) | tensorboard (also TensorBoard event files in RUN/tb)

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"train.epochs={self.epochs} must be >= 1")
        check_seed("train.seed", self.seed)
        _check(self.log in LOGS, f"train.log={self.log!r}; choose {' or '.join(LOGS)}")
        _check(self.batch_size >= 1, f"train.batch_size={self.batch_size} must be >= 1")
        _check(self.precision in PRECISIONS, f"train.precision={self.precision!r}; choose {PRECISIONS}")
        _check(self.num_workers >= 0, "train.num_workers must be >= 0")


@dataclass
class EvalConfig:
    threshold: str | None = None  # binary: decision threshold tuned on validation for f1 | recall:R; null = argmax
    n_boot: int = 1000  # bootstrap resamples for the 95% confidence intervals (0 = none)

    def __post_init__(self) -> None:
        ok = self.threshold in (None, "f1") or (
            isinstance(self.threshold, str)
            and self.threshold.startswith("recall:")
            and _is_fraction(self.threshold[7:])
        )
        _check(ok, f"eval.threshold={self.threshold!r}; choose f1 or recall:R with 0 < R <= 1 (e.g. recall:0.9)")
        _check(self.n_boot >= 0, "eval.n_boot must be >= 0")


def _is_fraction(text: str) -> bool:
    try:
        return 0 < float(text) <= 1
    except ValueError:
        return False


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
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


SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))  # data, preprocess, model, ... (`--config` help)

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
    "epochs": ("train.epochs",),
    "seed": ("data.seed", "train.seed"),
    "limit": ("data.limit_per_class",),
    "class_weights": ("optim.class_weights",),
    "log": ("train.log",),
    "sampler": ("data.sampler",),
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

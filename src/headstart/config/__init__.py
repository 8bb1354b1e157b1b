"""Typed run configuration: eight sections (``SECTIONS``), YAML in, ``--set key=value`` overrides, resolved dict out.

Every field has a comment (:mod:`headstart.config.sections`); ``__post_init__`` validates values; unknown
keys are errors that list the valid ones (:mod:`headstart.config.resolve`). The fully resolved config is
written into every run (``headstart.json``).
"""

from __future__ import annotations

from headstart.config.resolve import (
    FLAG_KEYS,
    SECTIONS,
    RunConfig,
    apply_overrides,
    apply_values,
    flag_values,
    load_config,
    resolve_run_config,
)
from headstart.config.sections import (
    CLASS_WEIGHTS,
    INTERPOLATIONS,
    LOGS,
    PRECISIONS,
    SEED_LIMIT,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    PreprocessConfig,
    StrategyConfig,
    TaskConfig,
    TrainConfig,
    check_seed,
)

__all__ = [
    "DataConfig",
    "TaskConfig",
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
    "INTERPOLATIONS",
    "PRECISIONS",
    "FLAG_KEYS",
]

"""Strategies: which layer groups train, when, and with which learning rates."""

from headstart.strategies.adapt import AdaBN, Coral, Dann
from headstart.strategies.base import (
    STRATEGIES,
    Fitter,
    PlateauRule,
    PlateauTrigger,
    Strategy,
    get_strategy,
    next_frozen,
    register,
)
from headstart.strategies.finetune import Finetune, Partial, Scratch
from headstart.strategies.linear_probe import LinearProbe, load_probe_into_head
from headstart.strategies.lora import Lora
from headstart.strategies.lp_ft import LpFt, scale_head
from headstart.strategies.param_groups import build_param_groups, count_trainable, group_lr, head_parameter_names
from headstart.strategies.progressive import Plateau, Progressive, unfreeze_steps

__all__ = [
    "STRATEGIES",
    "AdaBN",
    "Coral",
    "Dann",
    "Finetune",
    "Fitter",
    "LinearProbe",
    "Lora",
    "LpFt",
    "Partial",
    "Plateau",
    "PlateauTrigger",
    "PlateauRule",
    "Progressive",
    "Scratch",
    "Strategy",
    "build_param_groups",
    "count_trainable",
    "get_strategy",
    "group_lr",
    "head_parameter_names",
    "load_probe_into_head",
    "next_frozen",
    "register",
    "scale_head",
    "unfreeze_steps",
]

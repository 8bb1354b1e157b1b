"""Strategies: which layer groups train, when, and with which learning rates."""

from headstart.strategies.base import STRATEGIES, PlateauTrigger, Strategy, get_strategy, next_frozen, register
from headstart.strategies.finetune import Finetune, Partial, Scratch
from headstart.strategies.linear_probe import LinearProbe, ProbeFit, fit_probe, load_probe_into_head
from headstart.strategies.lp_ft import LpFt, fit_temperature, scale_head
from headstart.strategies.param_groups import build_param_groups, count_trainable, group_lr, head_parameter_names
from headstart.strategies.progressive import Plateau, Progressive, unfreeze_steps

__all__ = [
    "STRATEGIES",
    "Finetune",
    "LinearProbe",
    "LpFt",
    "Partial",
    "Plateau",
    "PlateauTrigger",
    "ProbeFit",
    "Progressive",
    "Scratch",
    "Strategy",
    "build_param_groups",
    "count_trainable",
    "fit_probe",
    "fit_temperature",
    "get_strategy",
    "group_lr",
    "head_parameter_names",
    "load_probe_into_head",
    "next_frozen",
    "register",
    "scale_head",
    "unfreeze_steps",
]

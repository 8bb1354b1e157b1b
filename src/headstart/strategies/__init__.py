"""Strategies: what trains, with which learning rates (linear-probe, finetune, scratch)."""

from headstart.strategies.base import STRATEGIES, Strategy, get_strategy, register, set_bn_eval
from headstart.strategies.finetune import Finetune, Scratch
from headstart.strategies.linear_probe import LinearProbe, ProbeFit, fit_probe, load_probe_into_head
from headstart.strategies.param_groups import build_param_groups, count_trainable, head_parameter_names

__all__ = [
    "STRATEGIES",
    "Finetune",
    "LinearProbe",
    "ProbeFit",
    "Scratch",
    "Strategy",
    "build_param_groups",
    "count_trainable",
    "fit_probe",
    "get_strategy",
    "head_parameter_names",
    "load_probe_into_head",
    "register",
    "set_bn_eval",
]

"""Optimizer parameter groups as plain data: which tensors, which learning rate, which decay."""

from __future__ import annotations

from torch import nn

from headstart.backbones.catalog import classifier

__all__ = ["head_parameter_names", "build_param_groups", "count_trainable"]


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the classification head's parameters (timm's ``get_classifier()``)."""
    ids = {id(p) for p in classifier(model).parameters()}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def build_param_groups(model: nn.Module, head_lr: float, backbone_lr_factor: float, weight_decay: float) -> list[dict]:
    """Up to four groups: backbone / head x decay / no decay.

    Backbone LR = ``head_lr * backbone_lr_factor``. Weight decay applies to weight matrices and
    kernels only: never to biases or normalization parameters (any tensor with ndim <= 1).
    Each group carries a ``name`` so logs and checkpoints refer to it by name, not position.
    """
    head = head_parameter_names(model)
    buckets: dict[str, list] = {"backbone": [], "backbone_no_decay": [], "head": [], "head_no_decay": []}
    for name, p in model.named_parameters():
        part = "head" if name in head else "backbone"
        buckets[part + ("_no_decay" if p.ndim <= 1 else "")].append(p)
    groups = []
    for name, params in buckets.items():
        if not params:
            continue
        lr = head_lr if name.startswith("head") else head_lr * backbone_lr_factor
        groups.append(
            {"name": name, "params": params, "lr": lr, "weight_decay": 0.0 if "no_decay" in name else weight_decay}
        )
    return groups


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""Optimizer parameter groups as plain data: made once, up front, one pair per layer group.

Each layer group gets two optimizer groups (weights with decay, norms and biases without); none is
ever added later. Freezing changes ``requires_grad`` and the group's LR multiplier, never the list,
so schedulers and checkpoints always see every group, by name.
"""

from __future__ import annotations

from torch import nn

from headstart.backbones.layers import LayerGroup, head_names

__all__ = ["head_parameter_names", "group_lr", "build_param_groups", "count_trainable"]


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the classification head's parameters (timm's ``get_classifier()``)."""
    return set(head_names(model))


def group_lr(index: int, n_groups: int, head_lr: float, backbone_lr_factor: float, layer_decay: float) -> float:
    """LR of layer group ``index`` (0 = input side, ``n_groups - 1`` = head).

    The head gets ``head_lr``; a backbone group ``d`` steps below the head gets
    ``head_lr * backbone_lr_factor * layer_decay ** d``.

    >>> group_lr(2, 3, 1e-3, 0.1, 0.5), group_lr(1, 3, 1e-3, 0.1, 0.5)
    (0.001, 5e-05)
    """
    distance = n_groups - 1 - index
    if distance == 0:
        return head_lr
    return head_lr * backbone_lr_factor * layer_decay**distance


def build_param_groups(
    model: nn.Module,
    groups: list[LayerGroup],
    head_lr: float,
    backbone_lr_factor: float,
    layer_decay: float,
    weight_decay: float,
) -> list[dict]:
    """Two optimizer groups per layer group: ``<name>`` (decay) and ``<name>/no_decay`` (ndim <= 1 tensors).

    Each dict has ``name``, ``layer_group``, ``params``, ``lr``, ``base_lr`` and ``weight_decay``;
    empty halves are dropped (a group without biases has no ``/no_decay`` part).
    """
    params = dict(model.named_parameters())
    out = []
    for i, g in enumerate(groups):
        lr = group_lr(i, len(groups), head_lr, backbone_lr_factor, layer_decay)
        decay = [params[n] for n in g.params if params[n].ndim > 1]
        no_decay = [params[n] for n in g.params if params[n].ndim <= 1]
        for suffix, ps, wd in (("", decay, weight_decay), ("/no_decay", no_decay, 0.0)):
            if ps:
                out.append(
                    {
                        "name": g.name + suffix,
                        "layer_group": g.name,
                        "params": ps,
                        "lr": lr,
                        "base_lr": lr,
                        "weight_decay": wd,
                    }
                )
    return out


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

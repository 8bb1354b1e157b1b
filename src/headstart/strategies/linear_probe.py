"""``linear-probe``: frozen backbone, L2 logistic regression on cached features.

The regularization strength is chosen on the validation split; the fitted model (including the
feature standardization) is folded into the network's linear head, so the saved artifact is an
ordinary network whose predictions equal the probe's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from headstart.backbones.build import classifier
from headstart.errors import HeadstartError
from headstart.strategies.base import Fitter, Strategy, register
from headstart.tasks.base import ProbeResult

__all__ = ["LinearProbe", "load_probe_into_head"]


@register
class LinearProbe(Strategy):
    """Features once (``torch.inference_mode``), then a logistic-regression head."""

    name = "linear-probe"
    gradients = False

    def fit(self, fitter: Fitter) -> Any:
        return fitter.probe()

    def initial_trainable(self, groups: list[str]) -> list[str]:
        return groups[-1:]  # the head, fitted in closed form rather than by the train loop


def load_probe_into_head(model: nn.Module, fit: ProbeResult) -> None:
    """Copy a probe fitted on cached features into the network's linear head (same predictions as the probe)."""
    head = classifier(model)
    if not isinstance(head, nn.Linear) or tuple(head.weight.shape) != fit.weight.shape:
        raise HeadstartError(
            f"linear-probe needs a linear classification head of shape {fit.weight.shape}; this backbone's head "
            f"is {head.__class__.__name__}. Use --strategy finetune for it"
        )
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(fit.weight))
        head.bias.copy_(torch.from_numpy(fit.bias))

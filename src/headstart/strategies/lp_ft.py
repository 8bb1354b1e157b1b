"""``lp-ft``: fit the head as a linear probe first, then fine-tune everything from it.

Kumar et al. (2022): a fresh random head distorts pretrained features during the first steps of
fine-tuning; starting from the probe's head avoids it. The probe's logits are temperature-scaled
on validation first (a probe fitted to convergence is over-confident, which would make the first
fine-tuning gradients vanish or spike), and the usual warmup follows.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from headstart.backbones.build import classifier
from headstart.metrics.classification import log_loss_from_proba
from headstart.strategies.base import register
from headstart.strategies.finetune import Finetune

__all__ = ["LpFt", "fit_temperature", "scale_head"]


@register
class LpFt(Finetune):
    name = "lp-ft"
    probe_first = True


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimizing validation log loss of ``softmax(logits / T)`` (grid search)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
    losses = [log_loss_from_proba(y, torch.softmax(torch.from_numpy(logits / t), 1).numpy()) for t in grid]
    return float(grid[int(np.argmin(losses))])


def scale_head(model: nn.Module, temperature: float) -> None:
    """Divide the head's weights and bias by ``temperature`` (same predictions, softer probabilities)."""
    head = classifier(model)
    with torch.no_grad():
        for p in head.parameters():
            p.div_(temperature)

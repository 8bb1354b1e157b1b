"""``lp-ft``: fit the head as a linear probe first, then fine-tune everything from it.

Kumar et al. (2022): a fresh random head distorts pretrained features during the first steps of
fine-tuning; starting from the probe's head avoids it. The probe's logits are temperature-scaled
on validation first (a probe fitted to convergence is over-confident, which would make the first
fine-tuning gradients vanish or spike), and the usual warmup follows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from headstart.backbones.build import classifier
from headstart.strategies.base import Fitter, register
from headstart.strategies.finetune import Finetune

__all__ = ["LpFt", "scale_head"]


@register
class LpFt(Finetune):
    name = "lp-ft"

    def fit(self, fitter: Fitter) -> Any:
        fitter.probe_head()
        return fitter.train()


def scale_head(model: nn.Module, temperature: float) -> None:
    """Divide the head's weights and bias by ``temperature`` (same predictions, softer probabilities)."""
    head = classifier(model)
    with torch.no_grad():
        for p in head.parameters():
            p.div_(temperature)

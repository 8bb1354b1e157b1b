"""``finetune`` (every layer), ``partial`` (the last K groups or named ones) and ``scratch``."""

from __future__ import annotations

from typing import Any

from headstart.errors import HeadstartError
from headstart.strategies.base import Fitter, Strategy, register

__all__ = ["Finetune", "Partial", "Scratch"]


@register
class Finetune(Strategy):
    """All groups trainable from the first step; discriminative LRs via backbone factor and layer decay."""

    name = "finetune"


@register
class Partial(Strategy):
    """Surgical fine-tuning: only ``strategy.groups`` (by name) or the last ``strategy.train_groups`` groups.

    The frozen prefix builds no autograd graph (its parameters do not require grad), so a step
    costs little more than the forward pass through it.
    """

    name = "partial"

    def initial_trainable(self, groups: list[str]) -> list[str]:
        chosen = self.cfg.strategy.groups
        if chosen is None:
            return groups[-self.cfg.strategy.train_groups :]
        unknown = [g for g in chosen if g not in groups]
        if unknown:
            raise HeadstartError(
                f"strategy.groups has unknown group(s) {', '.join(unknown)}; groups: {', '.join(groups)}"
            )
        return [g for g in groups if g in chosen]


@register
class Scratch(Finetune):
    """No pretraining: the modality's baseline, what transfer is measured against. For images that is the same
    architecture with random weights, trained by the same loop; for text, TF-IDF + logistic regression.

    Random BatchNorm statistics mean nothing, so they always train, and the backbone factor is 1 (it
    exists to protect pretrained features): a group ``d`` steps below the head gets
    ``optim.lr x strategy.layer_decay ** d``, every layer the head's LR at the default decay of 1.
    """

    name = "scratch"
    pretrained = False

    def fit(self, fitter: Fitter) -> Any:
        return fitter.baseline()

    def backbone_lr_factor(self) -> float:
        return 1.0

    def bn_policy(self) -> str:
        return "train"

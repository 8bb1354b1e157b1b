"""Gradual unfreezing: ``progressive`` (on a schedule, ULMFiT-style) and ``plateau`` (when validation stalls)."""

from __future__ import annotations

import math
from typing import Any

from headstart.strategies.base import Fitter, PlateauRule, Strategy, register

__all__ = ["Progressive", "Plateau", "unfreeze_steps", "plateau_rule"]


def unfreeze_steps(n_backbone: int, steps_per_epoch: int, epochs: int, every: float | None) -> list[int]:
    """Steps at which backbone groups unfreeze, top group first.

    ``every`` epochs apart when given; otherwise spread evenly over the first half of the run, so
    even a short run ends with the whole network training.

    >>> unfreeze_steps(4, 10, 2, None)
    [2, 5, 8, 10]
    >>> unfreeze_steps(3, 10, 5, 1.0)
    [10, 20, 30]
    """
    total = steps_per_epoch * epochs
    if every is not None:
        return [round(i * every * steps_per_epoch) for i in range(1, n_backbone + 1)]
    span = total / 2
    return [round(i * span / n_backbone) for i in range(1, n_backbone + 1)]


@register
class Progressive(Strategy):
    """Head first, then one more group from the top every ``strategy.unfreeze_every`` epochs, down to
    ``strategy.unfreeze_depth`` backbone groups (the ones below stay frozen: their activations are cached)."""

    name = "progressive"

    def initial_trainable(self, groups: list[str]) -> list[str]:
        return groups[-1:]

    def scheduled_unfreezes(self, groups: list[str], steps_per_epoch: int, epochs: int) -> dict[str, int]:
        backbone = groups[:-1][::-1][: self.cfg.strategy.unfreeze_depth]  # top (next to the head) first
        steps = unfreeze_steps(len(backbone), steps_per_epoch, epochs, self.cfg.strategy.unfreeze_every)
        return dict(zip(backbone, steps, strict=True))


def plateau_rule(
    n_backbone: int, steps_per_epoch: int, epochs: int, patience: int, min_delta: float,
    eval_every: int | None = None, groups: int | None = None, val_per_train: float = 0.25,
) -> PlateauRule:  # fmt: skip
    """The plateau rule of a run; explicit settings win.

    ``eval_every`` null: as many checks per epoch (its end included, at most 4) as keep validation at about
    half the cost of training (a validation image costs about a third of a training image's forward and
    backward pass; ``val_per_train`` is the validation split's size over the training split's). ``groups``
    null: enough groups per plateau that the whole backbone can be reached within the first half of the
    run's checks even if every plateau takes ``patience`` checks.

    >>> plateau_rule(8, 32, 5, 2, 0.0, val_per_train=1.0)  # Fashion-MNIST 100/class: val as large as train
    PlateauRule(eval_every=32, patience=2, min_delta=0.0, groups=8)
    >>> plateau_rule(8, 58, 5, 2, 0.0, val_per_train=0.21)  # ELPV: 4 checks per epoch, 20 in all
    PlateauRule(eval_every=15, patience=2, min_delta=0.0, groups=2)
    """
    per_epoch = max(1, min(4, math.floor(1.5 / max(val_per_train, 1e-9))))
    every = eval_every or max(1, math.ceil(steps_per_epoch / per_epoch))
    checks = epochs * math.ceil(steps_per_epoch / every)  # the epoch ends included
    reachable = max(1, (checks // 2) // patience)  # plateaus that fit in the first half of the run
    return PlateauRule(every, patience, min_delta, groups or max(1, math.ceil(n_backbone / reachable)))


@register
class Plateau(Strategy):
    """Head first, started from the linear probe's head (temperature-scaled, as ``lp-ft``); then, whenever
    validation stops improving (:class:`~headstart.strategies.base.PlateauRule`), the next groups unfreeze."""

    name = "plateau"

    def fit(self, fitter: Fitter) -> Any:
        fitter.probe_head()  # the first plateau then comes at a good head, not after epochs of head training
        return fitter.train()

    def initial_trainable(self, groups: list[str]) -> list[str]:
        return groups[-1:]

    def unfreezes_on_plateau(self) -> bool:
        return True

    def plateau_rule(self, groups: list[str], steps_per_epoch: int, epochs: int, val_per_train: float) -> PlateauRule:
        s = self.cfg.strategy
        return plateau_rule(
            len(groups) - 1, steps_per_epoch, epochs, s.patience, s.min_delta, s.eval_every, s.unfreeze_groups,
            val_per_train,
        )  # fmt: skip

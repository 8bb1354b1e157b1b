"""Gradual unfreezing: ``progressive`` (on a schedule, ULMFiT-style) and ``plateau`` (when validation stalls)."""

from __future__ import annotations

from headstart.strategies.base import Strategy, register

__all__ = ["Progressive", "Plateau", "unfreeze_steps"]


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
    """Head first, then one more group from the top every ``strategy.unfreeze_every`` epochs."""

    name = "progressive"

    def initial_trainable(self, groups: list[str]) -> list[str]:
        return groups[-1:]

    def scheduled_unfreezes(self, groups: list[str], steps_per_epoch: int, epochs: int) -> dict[str, int]:
        backbone = groups[:-1][::-1]  # top (next to the head) first
        steps = unfreeze_steps(len(backbone), steps_per_epoch, epochs, self.cfg.strategy.unfreeze_every)
        return dict(zip(backbone, steps, strict=True))


@register
class Plateau(Strategy):
    """Head first; the next group unfreezes when validation accuracy has not improved for ``patience`` epochs."""

    name = "plateau"

    def initial_trainable(self, groups: list[str]) -> list[str]:
        return groups[-1:]

    def unfreezes_on_plateau(self) -> bool:
        return True

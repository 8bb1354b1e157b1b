"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math

__all__ = ["drops_last", "steps_per_epoch", "unfreeze_gate", "warmup_cosine"]


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, floor: float = 0.01) -> float:
    """LR multiplier: linear warmup from ~0 to 1 over ``warmup_steps``, then cosine decay to ``floor``.

    >>> warmup_cosine(0, 100, 10) < warmup_cosine(9, 100, 10) == 1.0
    True
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def drops_last(n_train: int, batch_size: int) -> bool:
    """Drop the ragged last batch, unless it is the only one."""
    return n_train > batch_size


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch of the train loader (``drops_last`` decides the ragged batch).

    >>> steps_per_epoch(100, 32), steps_per_epoch(20, 32)
    (3, 1)
    """
    return n_train // batch_size if drops_last(n_train, batch_size) else -(-n_train // batch_size)


def unfreeze_gate(step: int, trainable: bool, unfrozen_at: int, warmup_steps: int) -> float:
    """LR multiplier of a layer group: 0 while frozen, then a linear ramp after a mid-run unfreeze.

    >>> [unfreeze_gate(s, True, 10, 4) for s in (10, 11, 13, 20)]
    [0.25, 0.5, 1.0, 1.0]
    """
    if not trainable:
        return 0.0
    if unfrozen_at == 0 or warmup_steps <= 0:
        return 1.0
    return min(1.0, (step - unfrozen_at + 1) / warmup_steps)

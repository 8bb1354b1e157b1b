"""``headstart plan``: the strategy's schedule per layer group, computed without training.

The rows are typed (:class:`~headstart.report.plan_table.PlanRow`); their one table renderer lives in
:mod:`headstart.report.plan_table` (``plan.md``, ``headstart plan``, the HTML report).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from headstart.backbones.layers import layer_groups
from headstart.config import RunConfig
from headstart.report.plan_table import PlanRow, plan_markdown
from headstart.strategies.base import Strategy
from headstart.strategies.param_groups import build_param_groups

__all__ = ["layer_plan", "plan_rows", "plan_markdown"]


def _unfreeze(name: str, strategy: Strategy, initial: set[str], scheduled: dict[str, int]) -> tuple[str, int | None]:
    """How the group ``name`` starts training (a :class:`PlanRow` ``unfreeze``) and the step it does, if fixed."""
    if not strategy.gradients:
        return ("probe (closed form)" if name in initial else "never"), None
    if name in initial:
        return "start", 0
    if name in scheduled:
        return "scheduled", scheduled[name]
    return ("on plateau" if strategy.unfreezes_on_plateau() else "never"), None


def layer_plan(model: nn.Module, strategy: Strategy, cfg: RunConfig, steps_per_epoch: int) -> list[PlanRow]:
    """One typed row per layer group, from input to head: when it trains, at which LR, with which decay."""
    groups = layer_groups(model)
    names = [g.name for g in groups]
    initial = set(strategy.initial_trainable(names))
    probe = not strategy.gradients
    scheduled = {} if probe else strategy.scheduled_unfreezes(names, steps_per_epoch, cfg.train.epochs)
    pgs = build_param_groups(
        model,
        groups,
        strategy.head_lr(),
        strategy.backbone_lr_factor(),
        cfg.strategy.layer_decay,
        cfg.optim.weight_decay,
    )
    lr = {pg["layer_group"]: pg["lr"] for pg in pgs}
    rows = []
    for g in groups:
        unfreeze, step = _unfreeze(g.name, strategy, initial, scheduled)
        row = PlanRow(
            group=g.name,
            params=g.numel(model),
            unfreeze=unfreeze,
            trainable_from=None if step is None else step // steps_per_epoch + 1,
            trainable_from_step=step,
            lr=None if probe else lr[g.name],
            weight_decay=cfg.optim.weight_decay,
        )
        rows.append(row)
    return rows


def plan_rows(model: nn.Module, strategy: Strategy, cfg: RunConfig, steps_per_epoch: int) -> list[dict[str, Any]]:
    """:func:`layer_plan` as a run stores it (``headstart.json`` ``plan``): ``group``, ``params``,
    ``trainable_from`` (the table's text: ``1``, ``2 (step 10)``, ``on plateau``, ...), ``lr``, ``weight_decay``."""
    return [row.to_dict() for row in layer_plan(model, strategy, cfg, steps_per_epoch)]

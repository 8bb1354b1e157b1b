"""``headstart plan``: the strategy's schedule per layer group, computed without training.

The rows are typed (:class:`~headstart.report.plan_table.PlanRow`); their one table renderer lives in
:mod:`headstart.report.plan_table` (``plan.md``, ``headstart plan``, the HTML report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from headstart.backbones.layers import layer_groups
from headstart.config import RunConfig
from headstart.report.plan_table import PlanRow, plan_markdown
from headstart.strategies.base import Strategy, val_per_train
from headstart.strategies.param_groups import build_param_groups

__all__ = ["layer_plan", "plan_rows", "plan_rule", "plan_markdown", "plan_trainable"]


def _unfreeze(name: str, strategy: Strategy, initial: set[str], scheduled: dict[str, int]) -> tuple[str, int | None]:
    """How the group ``name`` starts training (a :class:`PlanRow` ``unfreeze``) and the step it does, if fixed."""
    if not strategy.gradients:
        return ("probe (closed form)" if name in initial else "never"), None
    if name in initial:
        return "start", 0
    if name in scheduled:
        return "scheduled", scheduled[name]
    return ("on plateau" if strategy.unfreezes_on_plateau() else "never"), None


def layer_plan(
    model: nn.Module,
    strategy: Strategy,
    cfg: RunConfig,
    steps_per_epoch: int,
    history: Sequence[Mapping[str, Any]] = (),
) -> list[PlanRow]:
    """One typed row per layer group, from input to head: when it trains, at which LR, with which decay.

    ``history`` (a finished run's epoch records): a group that unfroze on a plateau gets the epoch it
    actually did (``trainable_from``), or ``not reached`` when it never did."""
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
        epoch = None if step is None else step // steps_per_epoch + 1
        if unfreeze == "on plateau" and history:
            epoch = _first_epoch(g.name, history)
            unfreeze = "on plateau" if epoch is not None else "on plateau (not reached)"
        row = PlanRow(
            group=g.name,
            params=g.numel(model),
            unfreeze=unfreeze,
            trainable_from=epoch,
            trainable_from_step=step,
            lr=None if probe else lr[g.name],
            weight_decay=cfg.optim.weight_decay,
        )
        rows.append(row)
    return rows


def _first_epoch(group: str, history: Sequence[Mapping[str, Any]]) -> int | None:
    """The first epoch whose record lists ``group`` as trainable (it unfroze during that epoch)."""
    for record in history:
        if group in (record.get("trainable_groups") or []):
            return int(record["epoch"])
    return None


def plan_rule(
    model: nn.Module, strategy: Strategy, cfg: RunConfig, steps_per_epoch: int, splits: Mapping[str, Any]
) -> str | None:
    """The strategy's plateau rule in words (``plateau``), or None; ``splits``: the run's split indices."""
    names = [g.name for g in layer_groups(model)]
    ratio = val_per_train(splits)
    rule = strategy.plateau_rule(names, steps_per_epoch, cfg.train.epochs, ratio) if strategy.gradients else None
    return None if rule is None else f"Plateau rule: {rule.describe()}."


def plan_trainable(model: nn.Module, strategy: Strategy) -> str:
    """The parameters that train from the first step, in words (``headstart plan``): those of the initially
    trainable groups that the strategy trains (``lora``: its adapters and the head; prepare the model first)."""
    groups = layer_groups(model)
    initial = set(strategy.initial_trainable([g.name for g in groups]))
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    trained = sum(sizes[n] for g in groups if g.name in initial for n in g.params if strategy.trains_param(n))
    total = sum(sizes.values())
    return f"Trainable parameters at the start: {trained:,} of {total:,} ({100 * trained / max(1, total):.3g}%)."


def plan_rows(
    model: nn.Module,
    strategy: Strategy,
    cfg: RunConfig,
    steps_per_epoch: int,
    history: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """:func:`layer_plan` as a run stores it (``headstart.json`` ``plan``): ``group``, ``params``,
    ``trainable_from`` (the table's text: ``1``, ``2 (step 10)``, ``3 (on plateau)``, ...), ``lr``, ``weight_decay``."""
    return [row.to_dict() for row in layer_plan(model, strategy, cfg, steps_per_epoch, history)]

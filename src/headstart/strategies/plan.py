"""``headstart plan``: the strategy's schedule as a table, computed without training."""

from __future__ import annotations

from typing import Any

from torch import nn

from headstart.backbones.layers import layer_groups
from headstart.config import RunConfig
from headstart.strategies.base import Strategy
from headstart.strategies.param_groups import build_param_groups

__all__ = ["plan_rows", "plan_markdown"]


def _trainable_from(name: str, strategy: Strategy, initial: set[str], scheduled: dict[str, int], spe: int) -> str:
    if strategy.kind == "probe":
        return "probe (closed form)" if name in initial else "never"
    if name in initial:
        return "1"
    if name in scheduled:
        step = scheduled[name]
        return f"{step // spe + 1} (step {step})"
    return "on plateau" if strategy.unfreezes_on_plateau() else "never"


def plan_rows(model: nn.Module, strategy: Strategy, cfg: RunConfig, steps_per_epoch: int) -> list[dict[str, Any]]:
    """One row per layer group: ``group``, ``params``, ``trainable_from`` (epoch), ``lr``, ``weight_decay``."""
    groups = layer_groups(model)
    names = [g.name for g in groups]
    initial = set(strategy.initial_trainable(names))
    scheduled = (
        strategy.scheduled_unfreezes(names, steps_per_epoch, cfg.train.epochs) if strategy.kind != "probe" else {}
    )
    pgs = build_param_groups(
        model, groups, cfg.optim.lr, strategy.backbone_lr_factor(), cfg.strategy.layer_decay, cfg.optim.weight_decay
    )
    lr = {pg["layer_group"]: pg["lr"] for pg in pgs}
    rows = []
    for g in groups:
        rows.append(
            {
                "group": g.name,
                "params": g.numel(model),
                "trainable_from": _trainable_from(g.name, strategy, initial, scheduled, steps_per_epoch),
                "lr": None if strategy.kind == "probe" else lr[g.name],
                "weight_decay": f"{cfg.optim.weight_decay:g} (0 on norms, biases)",
            }
        )
    return rows


def plan_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| group | params | trainable from epoch | LR at start | weight decay |", "|---|---:|---|---:|---|"]
    for r in rows:
        lr = "n/a" if r["lr"] is None else f"{r['lr']:.3g}"
        lines.append(f"| {r['group']} | {r['params']:,} | {r['trainable_from']} | {lr} | {r['weight_decay']} |")
    return "\n".join(lines) + "\n"

"""The layer plan as typed rows, and its one table: ``plan.md``, ``headstart plan`` and the HTML report.

A :class:`PlanRow` holds numbers as numbers (``headstart plan --format json``). A run stores its plan in
``headstart.json`` as :meth:`PlanRow.to_dict` (``trainable_from`` as the text of the table's column);
the renderers take either form, so the report of an older run renders the same way.

Example:
    >>> row = PlanRow("stem", 928, "scheduled", 2, 10, 3e-4, 0.01)
    >>> row.to_dict()["trainable_from"], row.to_json()["trainable_from"]
    ('2 (step 10)', 2)
    >>> print(plan_markdown([row]), end="")
    | group | params | trainable from epoch | LR at start | weight decay |
    |---|---:|---|---:|---|
    | stem | 928 | 2 (step 10) | 0.0003 | 0.01 (0 on norms, biases) |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

__all__ = ["PLAN_COLUMNS", "PLAN_NUMERIC", "PlanRow", "plan_cells", "plan_markdown", "plan_rich_table"]

PLAN_COLUMNS = ("group", "params", "trainable from epoch", "LR at start", "weight decay")
PLAN_NUMERIC = frozenset({1, 3})  # right-aligned columns: params, LR at start


@dataclass(frozen=True)
class PlanRow:
    """One layer group's plan."""

    group: str  # layer group name, from input to head
    params: int  # parameters in the group
    unfreeze: str  # start | scheduled | on plateau | on plateau (not reached) | never | probe (closed form)
    trainable_from: int | None  # 1-based epoch the group trains from; None when it has no fixed epoch
    trainable_from_step: int | None  # 0-based optimizer step it trains from (0: the start); None likewise
    lr: float | None  # learning rate at its first step; None for a closed-form probe
    weight_decay: float  # on weights only: norms and biases get 0

    def when(self) -> str:
        """The "trainable from epoch" cell: ``1``, ``3 (step 40)``, or the unfreeze rule without an epoch."""
        if self.trainable_from is None:
            return self.unfreeze
        if self.unfreeze == "on plateau":  # a finished run: the epoch it actually unfroze in
            return f"{self.trainable_from} (on plateau)"
        step = f" (step {self.trainable_from_step})" if self.unfreeze == "scheduled" else ""
        return f"{self.trainable_from}{step}"

    def to_json(self) -> dict[str, Any]:
        """Typed fields, in the table's column order (``headstart plan --format json``)."""
        return {
            "group": self.group,
            "params": self.params,
            "trainable_from": self.trainable_from,
            "trainable_from_step": self.trainable_from_step,
            "unfreeze": self.unfreeze,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
        }

    def to_dict(self) -> dict[str, Any]:
        """The row as a run stores it (``headstart.json`` ``plan``): the table's text for the epoch and decay."""
        return {
            "group": self.group,
            "params": self.params,
            "trainable_from": self.when(),
            "lr": self.lr,
            "weight_decay": f"{self.weight_decay:g} (0 on norms, biases)",
        }


def plan_cells(row: PlanRow | Mapping[str, Any]) -> list[str]:
    """The five cells of :data:`PLAN_COLUMNS` for a row, typed or as stored in a run."""
    stored = row.to_dict() if isinstance(row, PlanRow) else row
    params, lr = stored.get("params"), stored.get("lr")
    return [
        str(stored.get("group", "")),
        f"{params:,}" if isinstance(params, int) else "n/a",
        str(stored.get("trainable_from", "")),
        f"{lr:.3g}" if isinstance(lr, int | float) else "n/a",
        str(stored.get("weight_decay", "")),
    ]


def plan_markdown(rows: Sequence[PlanRow | Mapping[str, Any]]) -> str:
    """The plan as a Markdown table (a run's ``plan.md``)."""
    align = ["---:" if i in PLAN_NUMERIC else "---" for i in range(len(PLAN_COLUMNS))]
    lines = ["| " + " | ".join(PLAN_COLUMNS) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(plan_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plan_rich_table(rows: Sequence[PlanRow | Mapping[str, Any]], title: str) -> Table:
    """The plan as a terminal table (``headstart plan``)."""
    table = Table(title=title)
    for i, column in enumerate(PLAN_COLUMNS):
        table.add_column(column, justify="right" if i in PLAN_NUMERIC else "left")
    for row in rows:
        table.add_row(*plan_cells(row))
    return table

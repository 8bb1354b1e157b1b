"""Which ``metrics.json`` keys sum a run up, per task, and how the reports and the terminal name them.

A task's ``summary`` keys come first (the comparison columns, with their intervals); :data:`EXTRA` adds the
other headline numbers each task has (summary cards, the comparison rows' saved fields).

Example:
    >>> summary_keys("regression")
    ('r2', 'mae', 'spearman', 'rmse', 'pearson')
    >>> metric_name("mean_average_precision"), task_of_metrics({"r2": 0.5, "mae": 0.1, "spearman": 0.7})
    ('mean AP', 'regression')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["EXTRA", "METRIC_NAMES", "metric_name", "summary_keys", "task_of_metrics", "task_of_rows"]

METRIC_NAMES = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "roc_auc": "ROC-AUC",
    "balanced_accuracy": "balanced accuracy",
    "pr_auc": "PR-AUC",
    "ece": "ECE",
    "log_loss": "log loss",
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
    "spearman": "Spearman ρ",
    "pearson": "Pearson r",
    "mean_average_precision": "mean AP",
    "micro_average_precision": "micro AP",
    "micro_f1": "micro-F1",
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
    "loss": "loss",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "average_precision": "AP",
}
EXTRA = {  # headline numbers after the task's summary keys (cards, comparison rows)
    "classification": ("balanced_accuracy", "pr_auc", "ece", "log_loss"),
    "regression": ("rmse", "pearson"),
    "multilabel": ("micro_average_precision", "subset_accuracy", "hamming_loss"),
}
_EXTRA_IN_ROWS = {"classification": ("balanced_accuracy", "pr_auc", "ece")}  # what comparison rows kept before tasks


def metric_name(key: str) -> str:
    """The display name of a metric key (``val_`` prefix dropped); unknown keys with spaces for underscores."""
    key = key.removeprefix("val_")
    return METRIC_NAMES.get(key, key.replace("_", " "))


def summary_keys(task: str, rows: bool = False) -> tuple[str, ...]:
    """The task's ``summary`` keys, then its :data:`EXTRA` keys (``rows``: the ones comparison rows keep)."""
    from headstart.tasks import get_task

    extra = (_EXTRA_IN_ROWS if rows else EXTRA).get(task, EXTRA.get(task, ()))
    summary = get_task(task).summary
    return summary + tuple(k for k in extra if k not in summary)


def task_of_metrics(metrics: Mapping[str, Any]) -> str:
    """The task whose ``summary`` keys a metrics dict (or a comparison row) holds; ``classification`` when
    none matches (metrics written before tasks were recorded)."""
    from headstart.tasks import DEFAULT_TASK, get_task, known_tasks

    if isinstance(metrics.get("task"), str):
        return str(metrics["task"])
    for name in known_tasks():
        if all(k in metrics for k in get_task(name).summary):
            return name
    return DEFAULT_TASK


def task_of_rows(rows: list[dict[str, Any]]) -> str:
    """The task of a comparison's rows (they share one); ``classification`` for none."""
    return task_of_metrics(rows[0]) if rows else task_of_metrics({})

"""Comparison tables of finished runs: rich for the terminal, Markdown and JSON for files.

Rows come from :func:`headstart.experiments.summary_row`: metrics with their 95% intervals
(``ci95``), and with several seeds the mean and ``<metric>_std``. The metric columns are the ``summary``
metrics of the rows' task (``task`` in the rows, else recognized by their keys): accuracy, macro-F1 and
ROC-AUC for classification, R², MAE and Spearman for regression, mAP, macro-F1 and micro-F1 for multilabel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from headstart.report.metric_keys import metric_name, task_of_rows

__all__ = ["COLUMNS", "columns", "format_cell", "rich_table", "markdown_table", "write_comparison"]

LEAD = [("strategy", "strategy")]
TRAIL = [("seconds", "wall time (s)"), ("trainable_params", "trainable params"), ("run", "run")]
COLUMNS = [  # a classification comparison's columns (see :func:`columns`)
    *LEAD,
    ("accuracy", "accuracy [95% CI]"),
    ("macro_f1", "macro-F1 [95% CI]"),
    ("roc_auc", "ROC-AUC [95% CI]"),
    *TRAIL,
]
PLAIN = {"strategy", "seconds", "trainable_params", "run", "n_test", "seeds", "task", "origin"}  # not metrics
NOTES = {  # what report.md says each run folder holds, per task
    "classification": "metrics.json (per-class precision/recall/F1, confusion matrix, calibration),",
    "regression": "metrics.json (MAE, RMSE, R², correlations with 95% intervals),",
    "multilabel": "metrics.json (per-label precision/recall/F1/AP and thresholds),",
}


def columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(key, header)`` of each column: strategy, the task's summary metrics, wall time, params, run.

    >>> [h for _, h in columns([{"task": "regression"}])][:4]
    ['strategy', 'R² [95% CI]', 'MAE [95% CI]', 'Spearman ρ [95% CI]']
    """
    from headstart.tasks import get_task

    task = get_task(task_of_rows(rows))
    target = f"target_{task.primary}"
    on_target = [(target, f"target {metric_name(task.primary)} [95% CI]")] if any(target in r for r in rows) else []
    return [*LEAD, *((k, f"{metric_name(k)} [95% CI]") for k in task.summary), *on_target, *TRAIL]


def format_cell(key: str, row: dict[str, Any]) -> str:
    """``0.873 [0.851, 0.894]`` (one seed), ``0.873 ± 0.012 [0.85, 0.90]`` (seeds), plain for other columns.

    >>> format_cell("accuracy", {"accuracy": 0.8734, "ci95": {"accuracy": [0.851, 0.894]}})
    '0.873 [0.851, 0.894]'
    >>> format_cell("macro_f1", {"macro_f1": 0.8, "macro_f1_std": 0.0123, "ci95": {}})
    '0.800 ± 0.012'
    >>> format_cell("strategy", {"strategy": "finetune", "origin": "resumed"})
    'finetune (resumed)'
    """
    value = row.get(key)
    if value is None:
        return "n/a"
    if key not in PLAIN and isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value:.3f}"
        if row.get(f"{key}_std") is not None:
            text += f" ± {row[f'{key}_std']:.3f}"
        ci = (row.get("ci95") or {}).get(key)
        return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    if key == "seconds":
        return f"{value:.1f}"
    if key == "trainable_params":
        return f"{value:,}"
    if key == "strategy" and row.get("origin"):  # compare --resume: a run taken over, not trained now
        return f"{value} ({row['origin']})"
    return str(value)


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The rows as a terminal table, with the columns of their task (:func:`columns`)."""
    cols = columns(rows)
    table = Table(title=title)
    for key, header in cols:
        table.add_column(header, justify="left" if key in ("strategy", "run") else "right")
    for row in rows:
        table.add_row(*(format_cell(k, row) for k, _ in cols))
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, with the columns of their task (:func:`columns`)."""
    cols = columns(rows)
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(format_cell(k, row) for k, _ in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, rows: list[dict[str, Any]], header: dict[str, Any]) -> tuple[Path, Path]:
    """``comparison.json`` and ``report.md`` in ``out`` (``header`` holds data, backbone, verdict, config)."""
    out.mkdir(parents=True, exist_ok=True)
    js = out / "comparison.json"
    js.write_text(json.dumps({**header, "runs": rows}, indent=2) + "\n")
    md = out / "report.md"
    n_test = rows[0]["n_test"] if rows else 0
    lines = [f"# headstart comparison: {header['data']} with {header['backbone']}", ""]
    lines += [f"**{header.get('verdict', '')}**", ""]
    lines += [f"Test split: {n_test} examples, never used for training or model selection.", ""]
    lines += [markdown_table(rows)]
    warnings = sorted({w for r in rows for w in r.get("warnings", [])})
    lines += [f"- warning: {w}" for w in warnings] + ([""] if warnings else [])
    held = NOTES.get(task_of_rows(rows), "metrics.json,")
    lines += [
        f"Each run directory holds report.html, {held} history.jsonl (per-epoch loss and validation metrics)",
        "and the model with its recipe.",
        "",
    ]
    md.write_text("\n".join(lines))
    return js, md

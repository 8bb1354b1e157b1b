"""Comparison tables of finished runs: rich for the terminal, Markdown and JSON for files.

Rows come from :func:`headstart.experiments.summary_row`: metrics with their 95% intervals
(``ci95``), and with several seeds the mean and ``<metric>_std``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = ["COLUMNS", "format_cell", "rich_table", "markdown_table", "write_comparison"]

COLUMNS = [
    ("strategy", "strategy"),
    ("accuracy", "accuracy [95% CI]"),
    ("macro_f1", "macro-F1 [95% CI]"),
    ("roc_auc", "ROC-AUC [95% CI]"),
    ("seconds", "wall time (s)"),
    ("trainable_params", "trainable params"),
    ("run", "run"),
]
METRICS = ("accuracy", "macro_f1", "roc_auc")


def format_cell(key: str, row: dict[str, Any]) -> str:
    """``0.873 [0.851, 0.894]`` (one seed), ``0.873 ± 0.012 [0.85, 0.90]`` (seeds), plain for other columns.

    >>> format_cell("accuracy", {"accuracy": 0.8734, "ci95": {"accuracy": [0.851, 0.894]}})
    '0.873 [0.851, 0.894]'
    >>> format_cell("macro_f1", {"macro_f1": 0.8, "macro_f1_std": 0.0123, "ci95": {}})
    '0.800 ± 0.012'
    """
    value = row.get(key)
    if value is None:
        return "n/a"
    if key in METRICS:
        text = f"{value:.3f}"
        if row.get(f"{key}_std") is not None:
            text += f" ± {row[f'{key}_std']:.3f}"
        ci = (row.get("ci95") or {}).get(key)
        return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    if key == "seconds":
        return f"{value:.1f}"
    if key == "trainable_params":
        return f"{value:,}"
    return str(value)


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for key, header in COLUMNS:
        table.add_column(header, justify="left" if key in ("strategy", "run") else "right")
    for row in rows:
        table.add_row(*(format_cell(k, row) for k, _ in COLUMNS))
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(format_cell(k, row) for k, _ in COLUMNS) + " |" for row in rows]
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
    lines += [
        "Each run directory holds report.html, metrics.json (per-class precision/recall/F1, confusion matrix,",
        "calibration), history.jsonl (per-epoch loss and validation metrics) and the model with its recipe.",
        "",
    ]
    md.write_text("\n".join(lines))
    return js, md

"""Comparison tables of finished runs: rich for the terminal, Markdown and JSON for files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from headstart.runner import RunSummary

__all__ = ["comparison_rows", "rich_table", "markdown_table", "write_comparison"]

COLUMNS = [
    ("strategy", "strategy"),
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("roc_auc", "ROC-AUC"),
    ("seconds", "wall time (s)"),
    ("trainable_params", "trainable params"),
    ("run", "run"),
]


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in ("accuracy", "macro_f1", "roc_auc"):
        return f"{value:.3f}"
    if key == "seconds":
        return f"{value:.1f}"
    if key == "trainable_params":
        return f"{value:,}"
    return str(value)


def comparison_rows(runs: list[RunSummary]) -> list[dict[str, Any]]:
    return [
        {
            "strategy": r.strategy,
            "accuracy": r.metrics["accuracy"],
            "macro_f1": r.metrics["macro_f1"],
            "roc_auc": r.metrics["roc_auc"],
            "seconds": r.seconds,
            "trainable_params": r.trainable_params,
            "run": str(r.out),
            "n_test": r.metrics["n"],
        }
        for r in runs
    ]


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for key, header in COLUMNS:
        table.add_column(header, justify="left" if key in ("strategy", "run") else "right")
    for row in rows:
        table.add_row(*(_fmt(k, row[k]) for k, _ in COLUMNS))
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(k, row[k]) for k, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, rows: list[dict[str, Any]], header: dict[str, Any]) -> tuple[Path, Path]:
    """``comparison.json`` and ``report.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    js = out / "comparison.json"
    js.write_text(json.dumps({**header, "runs": rows}, indent=2) + "\n")
    md = out / "report.md"
    lines = [f"# headstart comparison: {header['data']} with {header['backbone']}", ""]
    lines += [f"Test split: {rows[0]['n_test'] if rows else 0} images, never used for training or model selection.", ""]
    lines += [
        markdown_table(rows),
        "Each run directory holds metrics.json (per-class precision/recall/F1, confusion matrix),",
    ]
    lines += ["history.jsonl (per-epoch loss and validation metrics) and the model with its preprocessing recipe.", ""]
    md.write_text("\n".join(lines))
    return js, md

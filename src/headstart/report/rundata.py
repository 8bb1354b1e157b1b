"""Reading a finished run directory for the HTML report: manifest, metrics, history and test predictions.

Only ``headstart.json`` and ``metrics.json`` are required; a missing ``history.jsonl`` or
``predictions.csv`` leaves the sections that need them out of the report.

``predictions.csv`` is task-specific (see each task's ``predictions_csv``), so it is read here as raw rows
(:class:`PredictionRows`); each task's report module parses the columns it knows
(:func:`headstart.report.classification.class_predictions`, ...).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headstart.artifacts.names import HISTORY, MANIFEST, METRICS, PREDICTIONS
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.tasks import Task

__all__ = ["PredictionRows", "RunData", "load_run_data", "read_history", "read_prediction_rows"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionRows:
    """``predictions.csv`` as written: its header and one dict of cell strings per test example."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        return self.text("id")

    def require(self, names: Sequence[str], what: str = "") -> None:
        """Raise a :class:`HeadstartError` naming the columns of ``names`` the file lacks."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            hint = f"; {what}" if what else ""
            raise HeadstartError(f"{self.path} lacks column(s) {', '.join(missing)}{hint}")

    def text(self, name: str) -> list[str]:
        """One column as strings."""
        self.require([name])
        return [r[name] or "" for r in self.rows]

    def numbers(self, name: str) -> np.ndarray:
        """One column as floats (an empty or unreadable cell is an error naming the row)."""
        self.require([name])
        try:
            return np.array([float(r[name]) for r in self.rows], dtype=float)
        except (TypeError, ValueError) as e:
            raise HeadstartError(f"{self.path}: column {name} holds a non-number ({e}); rerun `headstart train`") from e


@dataclass(frozen=True)
class RunData:
    """Everything the run report shows, read from one run directory."""

    run_dir: Path
    manifest: dict[str, Any]  # headstart.json
    metrics: dict[str, Any]  # metrics.json (test split)
    history: list[dict[str, Any]] = field(default_factory=list)  # history.jsonl, one dict per epoch
    predictions: PredictionRows | None = None  # predictions.csv; None when the file is missing

    @property
    def labels(self) -> list[str]:
        return list(self.metrics.get("labels") or self.manifest.get("labels") or [])

    @property
    def is_text(self) -> bool:
        return (self.manifest.get("recipe") or {}).get("modality") in ("text", "tfidf")

    @property
    def task(self) -> Task:
        """The run's task (``headstart.json`` ``task``; classification for runs saved before tasks)."""
        from headstart.tasks import task_of_manifest

        return task_of_manifest(self.manifest)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HeadstartError(f"{path} is missing; is {path.parent} a run directory written by `headstart train`?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise HeadstartError(f"{path} is not valid JSON ({e}); rerun `headstart train` to rewrite it") from e
    if not isinstance(data, dict):
        raise HeadstartError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def read_history(path: Path) -> list[dict[str, Any]]:
    """Epoch records of ``history.jsonl``; an empty list when the file is missing."""
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise HeadstartError(f"{path}:{n} is not valid JSON ({e}); rerun `headstart train` to rewrite it") from e
    return rows


def read_prediction_rows(path: Path) -> PredictionRows | None:
    """``predictions.csv`` as raw rows (it must have an ``id`` column), or None when the file is missing."""
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    table = PredictionRows(path, columns, rows)
    table.require(["id"], "rerun `headstart train` to rewrite it")
    return table


def load_run_data(run_dir: Path) -> RunData:
    """Read ``run_dir``; raises :class:`HeadstartError` naming the missing file when it is not a run directory."""
    run_dir = Path(run_dir)
    return RunData(
        run_dir=run_dir,
        manifest=_read_json(run_dir / MANIFEST),
        metrics=_read_json(run_dir / METRICS),
        history=read_history(run_dir / HISTORY),
        predictions=read_prediction_rows(run_dir / PREDICTIONS),
    )

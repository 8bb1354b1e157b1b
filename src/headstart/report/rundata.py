"""Reading a finished run directory for the HTML report: manifest, metrics, history and test predictions.

Only ``headstart.json`` and ``metrics.json`` are required; a missing ``history.jsonl`` or
``predictions.csv`` leaves the sections that need them out of the report.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headstart.artifacts.names import HISTORY, MANIFEST, METRICS, PREDICTIONS
from headstart.errors import HeadstartError

__all__ = ["Predictions", "RunData", "load_run_data", "read_history", "read_predictions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """Test-split predictions from ``predictions.csv``, with class names mapped to indices into ``labels``."""

    ids: list[str]  # (m,) example ids
    y: np.ndarray  # (m,) int64 true class index
    pred: np.ndarray  # (m,) int64 predicted class index
    confidence: np.ndarray  # (m,) float probability of the predicted class
    proba: np.ndarray  # (m, K) float class probabilities, columns in the order of ``labels``
    labels: list[str]  # (K,) class names

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class RunData:
    """Everything the run report shows, read from one run directory."""

    run_dir: Path
    manifest: dict[str, Any]  # headstart.json
    metrics: dict[str, Any]  # metrics.json (test split)
    history: list[dict[str, Any]] = field(default_factory=list)  # history.jsonl, one dict per epoch
    predictions: Predictions | None = None  # predictions.csv; None when the file is missing

    @property
    def labels(self) -> list[str]:
        return list(self.metrics.get("labels") or self.manifest.get("labels") or [])

    @property
    def is_text(self) -> bool:
        return (self.manifest.get("recipe") or {}).get("modality") in ("text", "tfidf")


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


def read_predictions(path: Path, labels: list[str]) -> Predictions | None:
    """``predictions.csv`` (id,true,pred,confidence,p_<label>...) or None when the file is missing."""
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    index = {label: i for i, label in enumerate(labels)}
    missing = [f"p_{label}" for label in labels if rows and f"p_{label}" not in rows[0]]
    if missing:
        raise HeadstartError(f"{path} lacks column(s) {', '.join(missing)}; it does not match the run's labels")
    try:
        y = np.array([index[r["true"]] for r in rows], dtype=np.int64)
        pred = np.array([index[r["pred"]] for r in rows], dtype=np.int64)
    except KeyError as e:
        raise HeadstartError(f"{path} names class {e} which is not among the run's labels {labels}") from e
    proba = np.array([[float(r[f"p_{label}"]) for label in labels] for r in rows], dtype=float)
    return Predictions(
        ids=[r["id"] for r in rows],
        y=y,
        pred=pred,
        confidence=np.array([float(r["confidence"]) for r in rows], dtype=float),
        proba=proba.reshape(len(rows), len(labels)),
        labels=list(labels),
    )


def load_run_data(run_dir: Path) -> RunData:
    """Read ``run_dir``; raises :class:`HeadstartError` naming the missing file when it is not a run directory."""
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / MANIFEST)
    metrics = _read_json(run_dir / METRICS)
    labels = list(metrics.get("labels") or manifest.get("labels") or [])
    return RunData(
        run_dir=run_dir,
        manifest=manifest,
        metrics=metrics,
        history=read_history(run_dir / HISTORY),
        predictions=read_predictions(run_dir / PREDICTIONS, labels),
    )

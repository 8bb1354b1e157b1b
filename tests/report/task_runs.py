"""Small hand-made regression and multi-label run folders, written the way ``headstart train`` writes them."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ML_LABELS", "make_multilabel_run", "make_regression_run"]

ML_LABELS = ["crack", "<finger>", "dirt"]


def _history(keys: dict[str, float], lr: bool) -> list[dict[str, Any]]:
    rows = []
    for epoch in (1, 2, 3):
        rates = {"block.6": 1e-4 / epoch, "head": 1e-3 / epoch} if lr else {}
        row = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "lr": rates, "events": []}
        rows.append(row | {k: v + 0.05 * epoch for k, v in keys.items()})
    return rows


def _manifest(task: str, labels: list[str], strategy: str, metrics: dict[str, Any], data: dict[str, Any]) -> dict:
    return {
        "backbone": {"name": "tiny-net"},
        "recipe": {"input_size": 224, "mean": [0.5, 0.5, 0.5]},
        "labels": labels,
        "task": task,
        "strategy": strategy,
        "config": {"data": {"source": "demo", "seed": 0}, "task": {"kind": task}, "train": {"epochs": 3, "seed": 0}},
        "metrics": metrics,
        "data": {"source": "demo", "n": 100, "split_sizes": {"train": 60, "val": 16, "test": 24}} | data,
        "seconds": 3.5,
        "trainable_params": 321,
        "best_epoch": 3,
        "plan": [{"group": "head", "params": 20, "trainable_from": "1", "lr": 1e-3, "weight_decay": "0.01"}],
    }


def _write(run_dir: Path, manifest: dict, history: list[dict], header: list[str], rows: list[list[Any]]) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "headstart.json").write_text(json.dumps(manifest))
    (run_dir / "metrics.json").write_text(json.dumps(manifest["metrics"]))
    (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    with (run_dir / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return run_dir


def regression_values(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) values: predictions close to the truth, with the largest error on example 5."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 10.0, n)
    pred = y + rng.normal(0.0, 0.5, n)
    pred[5] = y[5] + 6.0
    return y, pred


def make_regression_run(run_dir: Path, strategy: str = "linear-probe", seed: int = 0, r2: float = 0.81) -> Path:
    """A regression run: predictions.csv ``id,true,pred,error`` and the regression metrics."""
    y, pred = regression_values(seed=seed)
    metrics = {
        "mae": 0.62,
        "rmse": 1.4,
        "r2": r2,
        "spearman": 0.93,
        "pearson": 0.9,
        "n": len(y),
        "ci95": {"mae": [0.4, 0.9], "r2": [r2 - 0.1, r2 + 0.05], "spearman": [0.85, 0.97]},
        "warnings": ["only 24 test examples; the intervals are wide"],
    }
    data = {"target": {"min": 0.0, "max": 10.0, "mean": 5.0, "std": 3.0, "distinct": 24}}
    manifest = _manifest("regression", ["severity"], strategy, metrics, data)
    manifest["task_state"] = {"mean": 5.0, "std": 3.0}
    rows = [[f"ex/{i}", f"{t:.6g}", f"{p:.6g}", f"{p - t:.6g}"] for i, (t, p) in enumerate(zip(y, pred, strict=True))]
    history = _history({"val_mae": 0.5, "val_r2": 0.7}, lr=strategy != "linear-probe")
    return _write(run_dir, manifest, history, ["id", "true", "pred", "error"], rows)


def multilabel_values(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(multi-hot truth (n, 3), probabilities (n, 3)); example 3 gets a confidently wrong third label."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, len(ML_LABELS))) < 0.4).astype(int)
    Y[0] = [1, 1, 0]
    Y[1] = [0, 0, 0]
    P = np.clip(0.25 + 0.5 * Y + rng.normal(0.0, 0.2, Y.shape), 0.01, 0.99)
    Y[3, 2], P[3, 2] = 0, 0.99
    return Y, P


def make_multilabel_run(run_dir: Path, strategy: str = "linear-probe", seed: int = 0) -> Path:
    """A multi-label run: predictions.csv ``id,true,pred,p_<label>...`` (sets joined by ``|``), per-label metrics."""
    Y, P = multilabel_values(seed=seed)
    thresholds = [0.5, 0.45, 0.55]
    pred = (P >= np.array(thresholds)).astype(int)
    per_label = {
        label: {
            "precision": 0.7,
            "recall": 0.6,
            "f1": 0.65,
            "average_precision": 0.8,
            "roc_auc": 0.85,
            "support": int(Y[:, j].sum()),
            "threshold": thresholds[j],
        }
        for j, label in enumerate(ML_LABELS)
    }
    metrics = {
        "micro_f1": 0.66,
        "macro_f1": 0.64,
        "mean_average_precision": 0.78,
        "micro_average_precision": 0.77,
        "subset_accuracy": 0.4,
        "hamming_loss": 0.2,
        "per_label": per_label,
        "labels": ML_LABELS,
        "n": len(Y),
        "ci95": {"macro_f1": [0.55, 0.72], "mean_average_precision": [0.7, 0.85]},
        "warnings": [],
    }
    data = {"label_counts": {label: 30 for label in ML_LABELS}, "without_label": 4}
    manifest = _manifest("multilabel", ML_LABELS, strategy, metrics, data) | {"threshold": thresholds}
    names = ["|".join(label for label, on in zip(ML_LABELS, row, strict=True) if on) for row in np.r_[Y, pred]]
    rows = [[f"ex/{i}", names[i], names[len(Y) + i], *[f"{v:.6g}" for v in P[i]]] for i in range(len(Y))]
    history = _history({"val_mean_average_precision": 0.7, "val_micro_f1": 0.6}, lr=False)
    return _write(run_dir, manifest, history, ["id", "true", "pred", *[f"p_{c}" for c in ML_LABELS]], rows)

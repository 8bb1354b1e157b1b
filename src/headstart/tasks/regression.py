"""Regression: one real value per example (a defect severity, an age, a rating). The head has one output
trained on targets standardized with the training split's mean and std (saved with the run, inverted on
output), with MSE or Huber loss; the probe is ridge regression on cached features; metrics are MAE, RMSE,
R2 and rank / linear correlation with bootstrap intervals.

Registered on import (see :mod:`headstart.tasks.base`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headstart.config import RunConfig
from headstart.data.splits import stratified_split
from headstart.errors import HeadstartError
from headstart.metrics.regression import regression_metrics
from headstart.tasks.base import ProbeResult, Task, raw_labels, register_task, table_layout_only
from headstart.tasks.ridge_probe import RIDGE_ALPHAS, fit_ridge
from headstart.tasks.sparse_heads import ridge_head

__all__ = ["REGRESSION", "value_bins"]

BINS = 5  # value ranges the splits stratify on (fewer for small sets: about 10 examples per range at least)


def value_bins(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(N,) int: the quantile range of each value, so that splits keep low, middle and high targets alike.

    >>> np.bincount(value_bins(np.arange(40.0), bins=4)).tolist()  # at least 10 examples per range
    [10, 10, 10, 10]
    """
    values = np.asarray(values, dtype=np.float64)
    k = max(1, min(bins, len(values) // 10 or 1))
    edges = np.unique(np.quantile(values, np.linspace(0, 1, k + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _values(data: Any) -> np.ndarray:
    """The readers' label strings as float32 values; a label that is not a number is an error naming it."""
    out, bad = [], []
    for i, text in enumerate(raw_labels(data)):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            bad.append(f"{data.ids[i]!r}: {text!r}")
        out.append(value)
    if bad:
        raise HeadstartError(
            f"--task regression needs a number in every label of {data.source!r}; {len(bad)} are not, e.g. "
            f"{', '.join(bad[:3])}: fix those rows, or use --task classification for class names"
        )
    return np.asarray(out, dtype=np.float32)


def _encode(data: Any, cfg: RunConfig) -> Any:
    table_layout_only(data, "regression", "a number")
    values = _values(data)
    if len(np.unique(values)) < 2:
        raise HeadstartError(f"every label of {data.source!r} is {values[0]:g}; regression needs varying targets")
    return replace(data, targets=values, labels=[cfg.data.label_column])


def _align(data: Any, labels: list[str], cfg: RunConfig) -> np.ndarray:
    return _values(data)


def _check(cfg: RunConfig, data: Any) -> None:
    refused = {
        "eval.threshold": cfg.eval.threshold is not None,
        "optim.class_weights=auto": cfg.optim.class_weights == "auto",
        "optim.label_smoothing": cfg.optim.label_smoothing > 0,
        "data.sampler=balanced": cfg.data.sampler == "balanced",
    }
    given = [name for name, on in refused.items() if on]
    if given:
        raise HeadstartError(f"{', '.join(given)} apply to classes, not to --task regression; drop them")


class StandardizedLoss(nn.Module):
    """MSE or Huber (delta 1) between the head's output and the standardized target: (B, 1), (B,) -> ()."""

    def __init__(self, kind: str, mean: float, std: float):
        super().__init__()
        self.kind, self.mean, self.std = kind, mean, std

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = (target.float() - self.mean) / self.std
        if self.kind == "huber":
            return F.huber_loss(output[:, 0], z, delta=1.0)
        return F.mse_loss(output[:, 0], z)


def _validate(mean: float, std: float) -> Any:
    def validate(y: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, r2_score

        pred = scores[:, 0]
        record = {"val_loss": float(np.mean(((pred - y) / std) ** 2)), "val_mae": float(mean_absolute_error(y, pred))}
        record["val_r2"] = float(r2_score(y, pred)) if len(y) > 1 and np.ptp(y) > 0 else 0.0
        return record

    return validate


def _probe(mean: float, std: float) -> Any:
    def fit(
        xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, labels: list[str], cfg: RunConfig
    ) -> ProbeResult:
        return fit_ridge(xtr, (ytr - mean) / std, xva, (yva - mean) / std, RIDGE_ALPHAS)  # head outputs z

    return fit


def _metrics(
    y: np.ndarray, scores: np.ndarray, labels: list[str], threshold: Any, n_boot: int, seed: int
) -> dict[str, Any]:
    return regression_metrics(np.asarray(y, dtype=np.float64), scores[:, 0].astype(np.float64), n_boot, seed)


def _predictions_csv(ids: list[str], y: np.ndarray, scores: np.ndarray, labels: list[str], threshold: Any) -> str:
    """One row per example: id, true value, predicted value, error (predicted - true)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "true", "pred", "error"])
    for i, t, p in zip(ids, y, scores[:, 0], strict=True):
        writer.writerow([i, f"{t:.6g}", f"{p:.6g}", f"{p - t:.6g}"])
    return buf.getvalue()


def _summary(data: Any) -> dict[str, Any]:
    v = np.asarray(data.targets, dtype=np.float64)
    stats = {"min": v.min(), "max": v.max(), "mean": v.mean(), "std": v.std(), "distinct": len(np.unique(v))}
    return {"target": {k: float(x) for k, x in stats.items()}}


def _report(data: Any, examples: Any) -> Sequence[str]:
    from headstart.report.regression import sections

    return sections(data, examples)


def _bound(mean: float, std: float) -> Task:
    """The regression task for targets of this training mean and std (``bind`` / ``restore`` make these)."""
    std = std if std > 0 else 1.0
    return Task(
        name="regression",
        summary=("r2", "mae", "spearman"),
        primary="r2",
        empty_labels=False,
        head_dropout=False,  # a dropped feature times the probe's (standardization-folded) weight moves the value
        lr=1e-4,  # at 1e-3 the first Adam steps throw the backbone off and the value collapses to the mean (bench/)
        fine_tune_advice=(
            "lp-ft",
            "regression heads fine-tune best from the ridge probe's head (bench_tasks)",
        ),
        encode=_encode,
        stratify=lambda targets, fractions, seed: stratified_split(value_bins(targets), fractions, seed),
        strata=value_bins,
        target_summary=_summary,
        align=_align,
        num_outputs=lambda labels: 1,
        check=_check,
        bind=lambda targets: _bound(float(np.mean(targets)), float(np.std(targets))),
        restore=lambda state: _bound(float(state.get("mean", 0.0)), float(state.get("std", 1.0))),
        loss=lambda cfg, data, rows: StandardizedLoss(cfg.task.loss, mean, std),
        scores=lambda logits: logits.float() * std + mean,  # (B, 1) values in the target's units
        validate=_validate(mean, std),
        select=lambda record: (-record["val_loss"],),
        fit_probe=_probe(mean, std),
        sparse_head=lambda x, y, xv, yv, labels: ridge_head(x, (y - mean) / std, xv, (yv - mean) / std),
        calibrate=lambda logits, y: 1.0,  # no temperature: the head's scale is the target's
        decide=lambda scores, labels, threshold: scores[:, 0],  # the value itself
        tune_threshold=lambda cfg, validation: None,
        metrics=_metrics,
        record=lambda row, labels, threshold: {"value": float(row[0])},
        predictions_csv=_predictions_csv,
        report=_report,
        state={"mean": mean, "std": std},
    )


REGRESSION: Task = register_task(_bound(0.0, 1.0))

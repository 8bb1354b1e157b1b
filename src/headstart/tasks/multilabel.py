"""Multi-label: any number of labels per example, none included (defect types on one cell, topics of one
article). A sigmoid head trained with binary cross-entropy (``optim.class_weights=auto``: a positive weight
per label from its frequency); the probe is one-vs-rest logistic regression on cached features; a decision
threshold per label is tuned on validation (F1, or ``eval.threshold=recall:R``), saved, and used by predict
and evaluate; splits use iterative stratification so rare labels reach every split.

Registered on import (see :mod:`headstart.tasks.base`).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.config import RunConfig
from headstart.data.stratify import iterative_split
from headstart.data.targets import LABEL_SET_SEPARATOR
from headstart.errors import HeadstartError
from headstart.metrics.multilabel import (
    decide_labels,
    mean_average_precision,
    multilabel_metrics,
    tune_label_thresholds,
)
from headstart.tasks.base import ProbeResult, Task, raw_labels, register_task, table_layout_only
from headstart.tasks.sigmoid_probe import fit_sigmoid_probe
from headstart.tasks.sparse_heads import one_vs_rest_head

__all__ = ["MULTILABEL", "label_sets"]

logger = logging.getLogger(__name__)


def label_sets(texts: list[str], separator: str) -> list[list[str]]:
    """Each label cell as its labels: split on ``separator`` (and on the joint of JSON lists), stripped, empty
    cells give no label.

    >>> label_sets(["crack|finger", "", " crack "], "|")
    [['crack', 'finger'], [], ['crack']]
    """
    pattern = "|".join(re.escape(s) for s in (separator, LABEL_SET_SEPARATOR))
    return [sorted({p.strip() for p in re.split(pattern, t) if p.strip()}) for t in texts]


def _multi_hot(sets: list[list[str]], labels: list[str]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    y = np.zeros((len(sets), len(labels)), dtype=np.float32)
    for i, labelled in enumerate(sets):
        y[i, [index[label] for label in labelled]] = 1.0
    return y


def _encode(data: Any, cfg: RunConfig) -> Any:
    table_layout_only(data, "multilabel", f"labels joined by {cfg.data.label_separator!r}")
    sets = label_sets(raw_labels(data), cfg.data.label_separator)
    labels = sorted({label for labelled in sets for label in labelled})
    y = _multi_hot(sets, labels)
    rare = [f"{label} ({int(n)})" for label, n in zip(labels, y.sum(0), strict=True) if n < 2]
    if not labels or rare:
        raise HeadstartError(
            f"label(s) with fewer than 2 examples in {data.source!r}: {', '.join(rare) or 'none at all'}; a label "
            "needs at least one example for training and one for evaluation: add examples or drop the label"
        )
    return replace(data, targets=y, labels=labels)


def _align(data: Any, labels: list[str], cfg: RunConfig) -> np.ndarray:
    """Another set's label cells as multi-hot rows over the run's labels; unknown labels are an error."""
    sets = label_sets(raw_labels(data), cfg.data.label_separator)
    unknown = sorted({label for labelled in sets for label in labelled} - set(labels))
    if unknown:
        raise HeadstartError(
            f"labels {', '.join(map(repr, unknown))} in {data.source!r} are not among the run's labels "
            f"({', '.join(labels)}); evaluate on data with the same labels"
        )
    return _multi_hot(sets, labels)


def _strata(targets: np.ndarray) -> np.ndarray:
    """Each example's rarest label (``L`` for an example without labels): what ``limit_per_class`` keeps per."""
    y = np.asarray(targets)
    frequency = np.where(y > 0, y.sum(0, keepdims=True), np.inf)  # (N, L): the label's count where present
    return np.where(y.any(1), frequency.argmin(1), y.shape[1]).astype(np.int64)


def _check(cfg: RunConfig, data: Any) -> None:
    refused = {
        "optim.label_smoothing": cfg.optim.label_smoothing > 0,
        "data.sampler=balanced": cfg.data.sampler == "balanced",
    }
    given = [name for name, on in refused.items() if on]
    if given:
        raise HeadstartError(
            f"{', '.join(given)} apply to one class per example, not to --task multilabel; drop them "
            "(optim.class_weights=auto weighs rare labels instead)"
        )


def _pos_weight(y: np.ndarray) -> np.ndarray:
    """Per label: negatives / positives among the training rows (torch's ``pos_weight``)."""
    positives = y.sum(0)
    return (len(y) - positives) / np.maximum(positives, 1.0)


def _loss(cfg: RunConfig, data: Any, rows: np.ndarray) -> nn.Module:
    weight = _pos_weight(np.asarray(data.targets)[rows]) if cfg.optim.class_weights == "auto" else None
    return nn.BCEWithLogitsLoss(pos_weight=None if weight is None else torch.tensor(weight, dtype=torch.float32))


def _bce(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _validate(y: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    pred = decide_labels(proba)
    m_ap = mean_average_precision(y, proba)
    return {
        "val_loss": _bce(y, proba),
        "val_mean_average_precision": m_ap,  # None when no label has a validation positive
        "val_micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
    }


def _select(record: dict[str, Any]) -> tuple[float, ...]:
    m_ap = record["val_mean_average_precision"]
    return (-np.inf if m_ap is None else m_ap, -record["val_loss"])


def _fit_probe(
    xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, labels: list[str], cfg: RunConfig
) -> ProbeResult:
    weight = _pos_weight(ytr) if cfg.optim.class_weights == "auto" else None
    return fit_sigmoid_probe(xtr, ytr, xva, yva, cfg.strategy.probe_cs, pos_weight=weight)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """One temperature T for all labels minimizing validation BCE of ``sigmoid(logits / T)`` (grid search)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
    losses = [_bce(y, torch.sigmoid(torch.from_numpy(logits / t)).numpy()) for t in grid]
    return float(grid[int(np.argmin(losses))])


def _tune(cfg: RunConfig, validation: Callable[[], tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Per-label decision thresholds tuned on validation (``eval.threshold``: f1 by default, or recall:R)."""
    y, proba = validation()
    thresholds = tune_label_thresholds(y, proba, cfg.eval.threshold or "f1")
    logger.info("per-label thresholds tuned on validation: %s", np.round(thresholds, 3).tolist())
    return [float(t) for t in thresholds]


def _metrics(y: np.ndarray, proba: np.ndarray, labels: list[str], thresholds: Any, n_boot: int, seed: int) -> dict:
    t = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    return multilabel_metrics(y, proba, labels, t, n_boot, seed)


def _record(row: np.ndarray, labels: list[str], thresholds: Any) -> dict[str, Any]:
    chosen = decide_labels(row[None], None if thresholds is None else np.asarray(thresholds))[0]
    return {
        "labels": [label for label, on in zip(labels, chosen, strict=True) if on],
        "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
    }


def _predictions_csv(ids: list[str], y: np.ndarray, proba: np.ndarray, labels: list[str], thresholds: Any) -> str:
    """One row per example: id, true and predicted labels (joined by ``|``), p_<label>."""
    pred = decide_labels(proba, None if thresholds is None else np.asarray(thresholds))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "true", "pred", *[f"p_{label}" for label in labels]])
    for i, t, p, row in zip(ids, y, pred, proba, strict=True):
        names = ["|".join(label for label, on in zip(labels, v, strict=True) if on) for v in (t, p)]
        writer.writerow([i, *names, *[f"{v:.6g}" for v in row]])
    return buf.getvalue()


def _summary(data: Any) -> dict[str, Any]:
    y = np.asarray(data.targets)
    counts = {label: int(n) for label, n in zip(data.labels, y.sum(0), strict=True)}
    return {"label_counts": counts, "without_label": int((~y.any(1)).sum())}


def _report(data: Any, examples: Any) -> Sequence[str]:
    from headstart.report.multilabel import sections

    return sections(data, examples)


MULTILABEL: Task = register_task(
    Task(
        name="multilabel",
        summary=("mean_average_precision", "macro_f1", "micro_f1"),
        primary="mean_average_precision",
        empty_labels=True,
        head_dropout=True,
        lr=3e-4,  # lp-ft from the probe's sigmoid head drifts off at 1e-3: 0.728 mean AP vs 0.806 here (bench/)
        fine_tune_advice=("lp-ft", "multi-label heads fine-tune best from the probe's head (lp-ft led bench_tasks)"),
        encode=_encode,
        stratify=iterative_split,
        strata=_strata,
        target_summary=_summary,
        align=_align,
        num_outputs=len,
        check=_check,
        bind=lambda targets: MULTILABEL,  # the thresholds are tuned after training, not fitted to targets
        restore=lambda state: MULTILABEL,
        loss=_loss,
        scores=lambda logits: torch.sigmoid(logits.float()),
        validate=_validate,
        select=_select,
        fit_probe=_fit_probe,
        sparse_head=lambda x, y, xv, yv, labels: one_vs_rest_head(x, y, xv, yv),
        calibrate=fit_temperature,
        decide=lambda proba, labels, thresholds: decide_labels(proba, thresholds),
        tune_threshold=_tune,
        metrics=_metrics,
        record=_record,
        predictions_csv=_predictions_csv,
        report=_report,
    )
)

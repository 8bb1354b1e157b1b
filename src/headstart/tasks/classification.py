"""Single-label classification: one class per example, a softmax head, cross-entropy, argmax (or a tuned
binary threshold) to decide, and the classification metrics with bootstrap confidence intervals.

Registered on import (see :mod:`headstart.tasks.base`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.config import RunConfig
from headstart.data.balance import class_weights
from headstart.data.sources import check_class_counts
from headstart.data.splits import stratified_split
from headstart.errors import HeadstartError
from headstart.metrics.classification import compute_metrics, log_loss_from_proba, predict_labels
from headstart.metrics.threshold import tune_threshold
from headstart.tasks.base import ProbeResult, Task, register_task
from headstart.tasks.softmax_probe import fit_probe
from headstart.tasks.sparse_heads import logistic_head

__all__ = ["CLASSIFICATION", "fit_temperature"]

logger = logging.getLogger(__name__)

NUMERIC_HINT = 10  # more distinct all-number labels than this: probably a score, not classes


def _check(cfg: RunConfig, data: Any) -> None:
    if cfg.eval.threshold and len(data.labels) != 2:
        raise HeadstartError(
            f"eval.threshold={cfg.eval.threshold} tunes a binary decision threshold, but {cfg.data.source!r} has "
            f"{len(data.labels)} classes; drop eval.threshold"
        )


def _encode(data: Any, cfg: RunConfig) -> Any:
    """Class names are the readers' labels already; check there are >= 2 classes with >= 2 examples each, and
    point at ``--task regression`` when the labels are many distinct numbers."""
    numeric = len(data.labels) > NUMERIC_HINT and all(_is_number(label) for label in data.labels)
    hint = (
        f"; its {len(data.labels)} labels are all numbers: for a score per example use --task regression"
        if numeric
        else ""
    )
    try:
        check_class_counts(data, "examples")
    except HeadstartError as exc:
        raise HeadstartError(f"{exc}{hint}") from None
    if numeric:
        logger.warning("%s: %d distinct numeric labels%s", data.source, len(data.labels), hint)
    return data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _align(data: Any, labels: list[str], cfg: RunConfig) -> np.ndarray:
    """Targets of ``data`` re-indexed into the run's label order; unknown labels are an error."""
    unknown = [label for label in data.labels if label not in labels]
    if unknown:
        raise HeadstartError(
            f"labels {', '.join(map(repr, unknown))} in {data.source!r} are not among the run's labels "
            f"({', '.join(labels)}); evaluate on data with the same classes"
        )
    mapping = np.asarray([labels.index(label) for label in data.labels], dtype=np.int64)
    return mapping[data.targets]


def _report(data: Any, examples: Any) -> Sequence[str]:
    from headstart.report.classification import sections

    return sections(data, examples)


def _weights(cfg: RunConfig, data: Any, rows: np.ndarray) -> np.ndarray | None:
    """Inverse-frequency class weights of the training rows (``optim.class_weights=auto``), else None."""
    if cfg.optim.class_weights != "auto":
        return None
    return class_weights(data.targets[rows], len(data.labels))


def _loss(cfg: RunConfig, data: Any, rows: np.ndarray) -> nn.Module:
    weight = _weights(cfg, data, rows)
    return nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight, dtype=torch.float32),
        label_smoothing=cfg.optim.label_smoothing,
    )


def _validate(y: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    pred = proba.argmax(1)
    return {
        "val_loss": log_loss_from_proba(y, proba),
        "val_accuracy": float((pred == y).mean()),
        "val_macro_f1": float(f1_score(y, pred, average="macro", labels=np.arange(len(labels)), zero_division=0)),
    }


def _fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    labels: list[str],
    cfg: RunConfig,
) -> ProbeResult:
    weight = class_weights(y_train, len(labels)) if cfg.optim.class_weights == "auto" else None
    return fit_probe(x_train, y_train, x_val, y_val, len(labels), cfg.strategy.probe_cs, class_weight=weight)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimizing validation log loss of ``softmax(logits / T)`` (grid search)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
    losses = [log_loss_from_proba(y, torch.softmax(torch.from_numpy(logits / t), 1).numpy()) for t in grid]
    return float(grid[int(np.argmin(losses))])


def _tune_threshold(cfg: RunConfig, validation: Callable[[], tuple[np.ndarray, np.ndarray]]) -> float | None:
    """The binary decision threshold that best meets ``eval.threshold`` on the validation split, if asked."""
    if not cfg.eval.threshold:
        return None
    y, proba = validation()
    t = tune_threshold(y, proba[:, 1], cfg.eval.threshold)
    logger.info("decision threshold %.4f tuned on validation for %s", t, cfg.eval.threshold)
    return t


def _metrics(
    y: np.ndarray, proba: np.ndarray, labels: list[str], threshold: float | None, n_boot: int, seed: int
) -> dict[str, Any]:
    return compute_metrics(y, proba, labels, threshold=threshold, n_boot=n_boot, seed=seed)


def _record(proba: np.ndarray, labels: list[str], threshold: float | None) -> dict[str, Any]:
    """``label`` (the one decision rule) and ``probabilities`` ({label: p}) of one row."""
    k = int(predict_labels(proba[None], labels, threshold)[0])
    return {"label": labels[k], "probabilities": {label: float(v) for label, v in zip(labels, proba, strict=True)}}


def _predictions_csv(
    ids: list[str], y: np.ndarray, proba: np.ndarray, labels: list[str], threshold: float | None
) -> str:
    """One row per example: id, true and predicted label, confidence (probability of the predicted class), p_<label>."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "true", "pred", "confidence", *[f"p_{label}" for label in labels]])
    for i, row, t, k in zip(ids, proba, y, predict_labels(proba, labels, threshold), strict=True):
        writer.writerow([i, labels[int(t)], labels[k], f"{row[k]:.6g}", *[f"{v:.6g}" for v in row]])
    return buf.getvalue()


CLASSIFICATION: Task = register_task(
    Task(
        name="classification",
        summary=("accuracy", "macro_f1", "roc_auc"),
        primary="macro_f1",
        empty_labels=False,
        head_dropout=True,
        lr=1e-3,
        encode=_encode,
        stratify=stratified_split,
        strata=lambda targets: np.asarray(targets, dtype=np.int64),
        target_summary=lambda data: {"class_counts": data.class_counts()},
        align=_align,
        bind=lambda targets: CLASSIFICATION,  # nothing is fitted to the targets
        restore=lambda state: CLASSIFICATION,
        num_outputs=len,
        check=_check,
        loss=_loss,
        scores=lambda logits: logits.softmax(-1),
        validate=_validate,
        select=lambda record: (record["val_accuracy"], -record["val_loss"]),
        fit_probe=_fit_probe,
        sparse_head=lambda x, y, xv, yv, labels: logistic_head(x, y, xv, yv, len(labels)),
        calibrate=fit_temperature,
        decide=predict_labels,
        tune_threshold=_tune_threshold,
        metrics=_metrics,
        record=_record,
        predictions_csv=_predictions_csv,
        report=_report,
    )
)

"""Classification metrics over a whole evaluated set, computed with scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

__all__ = ["compute_metrics", "log_loss_from_proba"]


def log_loss_from_proba(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at 1e-12)."""
    if len(y_true) == 0:
        return float("nan")
    return float(-np.log(np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)).mean())


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, k: int) -> float | None:
    """Binary AUC of the positive class, or one-vs-rest macro AUC; None when undefined."""
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if k == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    if len(present) < k:  # OvR needs every class among the true labels
        return None
    p = proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None)
    return float(roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=np.arange(k)))


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """``accuracy``, macro precision/recall/F1, ``roc_auc``, ``per_class``, ``confusion_matrix``, ``labels``, ``n``.

    ``confusion_matrix`` rows are true labels and columns predictions, both in the order of ``labels``.
    """
    k = len(labels)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = proba.argmax(1) if len(proba) else np.zeros(0, dtype=np.int64)
    idx = np.arange(k)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=idx, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
        "roc_auc": _roc_auc(y_true, proba, k),
        "log_loss": log_loss_from_proba(y_true, proba) if len(y_true) else None,
        "per_class": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "labels": list(labels),
        "n": int(len(y_true)),
    }

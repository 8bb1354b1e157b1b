"""Percentile-bootstrap confidence intervals for accuracy, macro-F1 and ROC-AUC, vectorized over resamples."""

from __future__ import annotations

import numpy as np

from headstart.errors import HeadstartError

__all__ = ["bootstrap_ci", "percentile_interval"]

_CELLS_PER_CHUNK = 4_000_000  # resampled indices held in memory at once (B * n); bounds memory on big sets


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Central percentile interval ``[lo, hi]`` of the finite ``values``; None when there are none.

    Example:
        >>> percentile_interval(np.arange(201.0))
        [5.0, 195.0]
    """
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    tail = round(50.0 * (1.0 - level), 9)  # 2.5 for 95%, without 1 - 0.95 rounding noise
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def _accuracy_f1(y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 (over all ``k`` labels, 0 for a label never true nor predicted) per resample row."""
    b, n = idx.shape
    rows = np.arange(b)[:, None] * (k * k)
    cells = rows + y_true[idx] * k + y_pred[idx]  # (B, n): flat (resample, true, pred) cell
    cm = np.bincount(cells.ravel(), minlength=b * k * k).reshape(b, k, k)  # (B, K, K)
    tp = np.diagonal(cm, axis1=1, axis2=2)  # (B, K)
    denom = cm.sum(2) + cm.sum(1)  # 2tp + fp + fn, (B, K)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return tp.sum(1) / n, f1.mean(1)


def _weighted_auc(score: np.ndarray, positive: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Binary ROC-AUC (ties count half) of ``score`` on each resample row of ``idx``; NaN where a side is empty."""
    b = idx.shape[0]
    unique, rank = np.unique(score, return_inverse=True)
    u = len(unique)
    cells = (np.arange(b)[:, None] * (2 * u) + 2 * rank[idx] + positive[idx]).ravel()  # (resample, rank, side)
    counts = np.bincount(cells, minlength=b * u * 2).reshape(b, u, 2)  # (B, U, 2)
    n_neg, n_pos = counts[..., 0], counts[..., 1]  # (B, U) each
    neg_below = np.cumsum(n_neg, 1) - n_neg  # negatives scored strictly lower, (B, U)
    pairs_won = (n_pos * (neg_below + 0.5 * n_neg)).sum(1)
    pairs = n_pos.sum(1) * n_neg.sum(1)
    return np.where(pairs > 0, pairs_won / np.maximum(pairs, 1), np.nan)


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Binary AUC of class 1, or one-vs-rest macro AUC (NaN unless every class is drawn), per resample row."""
    k = proba.shape[1]
    if k == 2:
        return _weighted_auc(proba[:, 1], y_true == 1, idx)
    p = proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None)
    per_class = [_weighted_auc(p[:, c], y_true == c, idx) for c in range(k)]
    return np.mean(per_class, axis=0)  # NaN propagates: OvR needs every class among the true labels


def bootstrap_ci(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, list[float] | None]:
    """95% percentile-bootstrap intervals of ``accuracy``, ``macro_f1`` and ``roc_auc`` as ``[lo, hi]``.

    ``y_true`` and ``y_pred`` are class indices, ``proba`` is ``(n, K)``; macro-F1 averages over all ``K``
    classes like :func:`headstart.metrics.compute_metrics`. Each of the ``n_boot`` resamples draws ``n``
    examples with replacement (``numpy.random.default_rng(seed)``); resamples where ROC-AUC is undefined
    (a class missing) are skipped. A value is None when no resample defines it (or ``n`` or ``n_boot`` is 0).

    Example:
        >>> y = np.array([0, 1] * 50)
        >>> ci = bootstrap_ci(y, y, np.eye(2)[y], n_boot=200)
        >>> ci["accuracy"], ci["roc_auc"]
        ([1.0, 1.0], [1.0, 1.0])
    """
    if n_boot < 0:
        raise HeadstartError(f"n_boot={n_boot} is negative; use 0 to skip the bootstrap or e.g. 1000 resamples")
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n, k = proba.shape
    if n == 0 or n_boot == 0:
        return {"accuracy": None, "macro_f1": None, "roc_auc": None}
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // n)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))  # (B, n) resampled example indices
        parts.append((*_accuracy_f1(y_true, y_pred, idx, k), _roc_auc(y_true, proba, idx)))
    acc, f1, auc = (np.concatenate(col) for col in zip(*parts, strict=True))
    return {
        "accuracy": percentile_interval(acc),
        "macro_f1": percentile_interval(f1),
        "roc_auc": percentile_interval(auc),
    }

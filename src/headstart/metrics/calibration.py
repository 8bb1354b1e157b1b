"""Calibration of predicted probabilities: expected calibration error and the reliability table."""

from __future__ import annotations

from typing import Any

import numpy as np

from headstart.errors import HeadstartError

__all__ = ["expected_calibration_error"]


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> tuple[float, dict[str, Any]]:
    """Expected calibration error of the top-class confidence, and the reliability table behind it.

    Each example's confidence is its largest probability and it counts as correct when that class
    (the argmax) is the true one. Confidences fall into ``n_bins`` equal-width bins closed on the
    right, ``(0, 1/n_bins], ..., ((n_bins-1)/n_bins, 1]`` (a confidence of exactly 0 goes to the
    first bin). ECE is the count-weighted mean of ``|accuracy - mean confidence|`` over the bins.

    Returns ``(ece, reliability)``; ``reliability`` holds ``bin_edges`` (``n_bins + 1`` floats) and,
    for the non-empty bins only, ``bin_index``, ``confidence``, ``accuracy`` and ``count``. An empty
    set gives ``nan`` and empty lists.

    Example:
        >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
        >>> ece, table = expected_calibration_error(np.array([0, 1, 1]), proba, n_bins=2)
        >>> round(ece, 4)  # bin (0.5, 1]: conf (0.9+0.8+0.6)/3, acc 2/3
        0.1
        >>> table["count"]
        [3]
    """
    if n_bins < 1:
        raise HeadstartError(f"n_bins={n_bins} is not a bin count; use an integer >= 1 (15 is the usual choice)")
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    table: dict[str, Any] = {
        "bin_edges": edges.tolist(),
        "bin_index": [],
        "confidence": [],
        "accuracy": [],
        "count": [],
    }
    if len(y_true) == 0:
        return float("nan"), table
    confidence = proba.max(1)
    correct = (proba.argmax(1) == y_true).astype(np.float64)
    # right-closed bins: a confidence equal to edge i belongs to bin i - 1
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / np.maximum(count, 1)
    mean_acc = np.bincount(bins, weights=correct, minlength=n_bins) / np.maximum(count, 1)
    ece = float((count * np.abs(mean_acc - mean_conf)).sum() / len(y_true))
    used = np.flatnonzero(count)
    table.update(
        bin_index=used.tolist(),
        confidence=mean_conf[used].tolist(),
        accuracy=mean_acc[used].tolist(),
        count=count[used].tolist(),
    )
    return ece, table

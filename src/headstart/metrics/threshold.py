"""Choosing the decision threshold of a binary classifier on held-out scores."""

from __future__ import annotations

import numpy as np

from headstart.errors import HeadstartError

__all__ = ["parse_objective", "tune_threshold"]

_CHOICES = "'f1' (best F1 of class 1) or 'recall:R' with 0 < R <= 1 (e.g. 'recall:0.9')"


def parse_objective(objective: str) -> tuple[str, float | None]:
    """Validate a threshold objective: ``"f1"`` -> ``("f1", None)``, ``"recall:0.9"`` -> ``("recall", 0.9)``.

    Example:
        >>> parse_objective("recall:0.95")
        ('recall', 0.95)
    """
    text = objective.strip().lower()
    if text == "f1":
        return "f1", None
    name, _, value = text.partition(":")
    if name == "recall":
        try:
            target = float(value)
        except ValueError:
            target = float("nan")
        if 0.0 < target <= 1.0:
            return "recall", target
    raise HeadstartError(f"unknown threshold objective {objective!r}; choose {_CHOICES}")


def _check_binary(y_true: np.ndarray, p_positive: np.ndarray) -> None:
    """Raise unless ``y_true`` holds 0/1 labels with at least one 1, aligned with ``p_positive``."""
    if y_true.shape != p_positive.shape or y_true.ndim != 1:
        raise HeadstartError(
            f"y_true {y_true.shape} and p_positive {p_positive.shape} must be 1-D and of equal length; "
            "pass proba[:, 1] of the same examples"
        )
    bad = np.setdiff1d(np.unique(y_true), [0, 1])
    if len(bad):
        raise HeadstartError(f"tune_threshold needs binary labels 0/1, got {bad.tolist()}; it tunes binary tasks only")
    if not (y_true == 1).any():
        raise HeadstartError(
            f"tune_threshold needs at least one example of class 1 among the {len(y_true)} given; "
            "tune on a split that contains positives"
        )


def tune_threshold(y_true: np.ndarray, p_positive: np.ndarray, objective: str = "f1") -> float:
    """Threshold ``t`` on the class-1 score (predict 1 when ``p_positive >= t``) that best meets ``objective``.

    Candidates are the distinct scores. ``"f1"`` maximizes the F1 of class 1 (the highest such threshold
    on ties); ``"recall:R"`` returns the highest threshold whose recall of class 1 is at least ``R``,
    which keeps precision as high as that recall allows.

    Example:
        >>> y = np.array([0, 0, 1, 0, 1, 1])
        >>> p = np.array([0.1, 0.3, 0.35, 0.4, 0.7, 0.9])
        >>> tune_threshold(y, p)  # predicts the top 4 scores: tp 3, fp 1, fn 0 -> F1 6/7, the best
        0.35
        >>> tune_threshold(y, p, "recall:0.6")
        0.7
    """
    from sklearn.metrics import precision_recall_curve

    _, target = parse_objective(objective)
    y_true = np.asarray(y_true, dtype=np.int64)
    p_positive = np.asarray(p_positive, dtype=np.float64)
    _check_binary(y_true, p_positive)
    precision, recall, thresholds = precision_recall_curve(y_true, p_positive, drop_intermediate=False)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    if target is not None:  # "recall:R"
        return float(thresholds[recall >= target - 1e-12].max())
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(thresholds[best].max())

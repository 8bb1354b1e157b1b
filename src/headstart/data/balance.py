"""Class imbalance: loss weights and sampling weights computed from the training labels."""

from __future__ import annotations

import numpy as np

__all__ = ["class_weights", "sample_weights"]


def class_weights(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """``n / (K x count_k)`` per class (scikit-learn's "balanced"); 0 for classes absent from ``targets``.

    >>> class_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 2.0]
    """
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = len(targets) / (present.sum() * counts[present])
    return weights


def sample_weights(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-example drawing weights under which every present class is drawn equally often.

    >>> sample_weights(np.array([0, 0, 0, 1]), 2).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    w = class_weights(targets, num_classes)[np.asarray(targets, dtype=np.int64)]
    return w / w.sum()

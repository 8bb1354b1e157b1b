"""Transferability estimators for real-valued and multi-label targets (classes: :mod:`.estimators`).

- a real value per example, float ``(N,)``: :func:`logme_regression` (LogME of the standardized
  target; You et al. 2021 define LogME for regression targets) and :func:`knn_r2`;
- a set of labels per example, multi-hot ``(N, L)`` of 0/1: :func:`logme_multilabel` (the mean
  over labels of each label's binary LogME) and :func:`knn_mean_average_precision`.

H-score, LEEP and NCE read classes and have no counterpart here. Pure functions from numpy arrays
to a float, higher is better; bad inputs raise :class:`ValueError` naming the problem and the fix.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor

from headstart.metrics.multilabel import mean_average_precision
from headstart.transferability.estimators import _check_features, _knn_inputs, _mean_evidence, _one_vs_rest

__all__ = ["knn_mean_average_precision", "knn_r2", "logme_multilabel", "logme_regression"]

logger = logging.getLogger(__name__)


def _check_values(values: ArrayLike, n: int | None, name: str = "values") -> NDArray[np.float64]:
    """``values`` as finite float64 ``(N,)`` real targets, N == n if given."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (N,), got shape {arr.shape}; pass one real target per sample")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty; pass one real target per sample")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} values for {n} samples; pass one per sample")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}; use .astype(float)")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(
            f"{name} contains NaN/inf, first at sample {int(np.flatnonzero(~np.isfinite(out))[0])}; "
            "drop those samples before scoring"
        )
    return out


def _check_label_matrix(label_matrix: ArrayLike, n: int | None, name: str = "label_matrix") -> NDArray[np.int64]:
    """``label_matrix`` as an int64 multi-hot ``(N, L)`` array of 0/1, N == n if given."""
    arr = np.asarray(label_matrix)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D multi-hot array of shape (N, L), got shape {arr.shape}; "
            "one row per sample, one 0/1 column per label"
        )
    if len(arr) == 0:
        raise ValueError(f"{name} is empty; pass one multi-hot row per sample")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} rows for {n} samples; pass one per sample")
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} must be 0/1 numbers, got dtype {arr.dtype}")
    bad = np.setdiff1d(np.unique(arr), [0, 1])
    if len(bad):
        raise ValueError(f"{name} must hold only 0 and 1 (multi-hot), got {bad[:5].tolist()}")
    return arr.astype(np.int64)


def logme_regression(features: ArrayLike, values: ArrayLike) -> float:
    """LogME of one real-valued target: per-sample log maximum evidence of Bayesian linear regression.

    LogME (You et al., 2021; see :func:`logme`) is defined for regression targets directly: the
    evidence of ``y = F w + e`` is maximised over alpha, beta for the target itself. The target is
    standardized first (mean 0, standard deviation 1 over these samples), so the score does not
    depend on the target's units or offset and backbones are compared on one scale.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 8))
        >>> y = x[:, 0] + 0.1 * rng.normal(size=200)
        >>> logme_regression(x, 1000 * y + 5) > logme_regression(rng.normal(size=(200, 8)), y)
        True
    """
    f = _check_features(features)
    y = _check_values(values, len(f))
    if np.ptp(y) == 0:
        raise ValueError(f"values are all {y[0]:g}; LogME needs a target that varies")
    return _mean_evidence(f, [(y - y.mean()) / y.std()])


def logme_multilabel(features: ArrayLike, label_matrix: ArrayLike) -> float:
    """LogME of a multi-label target: the mean over labels of each label's binary LogME.

    Each label ``l`` is a two-class problem (``label_matrix[:, l]`` is 0 or 1) scored as
    :func:`logme` scores classes (the mean evidence of its two indicator targets); labels that
    are constant on these samples (never or always present) say nothing about the features and
    are left out. One eigen-decomposition serves every label.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Y = rng.integers(0, 2, size=(200, 3))
        >>> x = rng.normal(size=(200, 6))
        >>> logme_multilabel(x + np.pad(3.0 * Y, ((0, 0), (0, 3))), Y) > logme_multilabel(x, Y)
        True
    """
    f = _check_features(features)
    y = _check_label_matrix(label_matrix, len(f))
    varying = [col for col in y.T if 0 < col.sum() < len(col)]
    if not varying:
        raise ValueError(
            "every label is constant on these samples (always or never present); LogME needs a label "
            "that some samples have and others do not"
        )
    if len(varying) < y.shape[1]:
        logger.info("logme_multilabel: %d constant label(s) left out", y.shape[1] - len(varying))
    return _mean_evidence(f, [t for col in varying for t in _one_vs_rest(col)])


def _knn_average(x_train: NDArray[np.float64], targets: NDArray[np.float64], x_val: NDArray[np.float64], k: int) -> Any:
    """The ``1 / distance``-weighted mean target of each validation sample's k cosine neighbours."""
    reg = KNeighborsRegressor(n_neighbors=k, metric="cosine", weights="distance")
    return reg.fit(x_train, targets).predict(x_val)


def knn_r2(
    train_features: ArrayLike,
    train_values: ArrayLike,
    val_features: ArrayLike,
    val_values: ArrayLike,
    k: int = 10,
) -> float:
    """R2 on validation of a cosine k-nearest-neighbour regression fitted on the train features.

    The prediction is the ``1 / distance``-weighted mean value of the k nearest training samples
    (the geometry of :func:`knn_accuracy`). 1 is perfect, 0 is predicting the validation mean, and
    it is negative when worse than that. ``k`` is clipped to the train size.

    Example:
        >>> knn_r2([[1, 0], [0, 1]], [0.0, 1.0], [[2, 0.1], [0.1, 3]], [0.0, 1.0], k=1)
        1.0
    """
    x_train, x_val, k_used = _knn_inputs(train_features, val_features, k, "knn_r2")
    y_train = _check_values(train_values, len(x_train), name="train_values")
    y_val = _check_values(val_values, len(x_val), name="val_values")
    if len(y_val) < 2 or np.ptp(y_val) == 0:
        raise ValueError("R2 needs at least 2 validation samples whose values differ")
    return float(r2_score(y_val, _knn_average(x_train, y_train, x_val, k_used)))


def knn_mean_average_precision(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    val_features: ArrayLike,
    val_labels: ArrayLike,
    k: int = 10,
) -> float:
    """Mean average precision on validation of a cosine k-nearest-neighbour multi-label scorer.

    A validation sample's score for a label is the ``1 / distance``-weighted share of its k
    nearest training samples that have the label; average precision is computed per label with a
    validation positive and averaged (macro). ``k`` is clipped to the train size.

    Example:
        >>> knn_mean_average_precision([[1, 0], [0, 1]], [[1, 0], [0, 1]], [[2, 0.1], [0.1, 3]], [[1, 0], [0, 1]])
        1.0
    """
    x_train, x_val, k_used = _knn_inputs(train_features, val_features, k, "knn_mean_average_precision")
    y_train = _check_label_matrix(train_labels, len(x_train), name="train_labels")
    y_val = _check_label_matrix(val_labels, len(x_val), name="val_labels")
    if y_val.shape[1] != y_train.shape[1]:
        raise ValueError(
            f"val_labels have {y_val.shape[1]} label columns but train_labels have {y_train.shape[1]}; "
            "encode both with the same label list"
        )
    scores = _knn_average(x_train, y_train.astype(np.float64), x_val, k_used)
    m_ap = mean_average_precision(y_val, np.asarray(scores).reshape(y_val.shape))
    if m_ap is None:
        raise ValueError("no validation sample has any label; mean average precision needs a positive")
    return m_ap

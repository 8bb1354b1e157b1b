"""Estimators for real-valued and multi-label targets: reference computations, invariances, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.metrics import average_precision_score

from headstart.transferability import (
    knn_mean_average_precision,
    knn_r2,
    logme_multilabel,
    logme_regression,
)
from headstart.transferability.estimators import logme


def _linear_target(noise: float, n: int = 120, dim: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features and a real target that is a linear function of them plus ``noise``-scaled Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    return x, x @ rng.normal(size=dim) + noise * rng.normal(size=n)


def _marginal_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, F F^T / alpha + I / beta): the evidence of y = F w + e without the eigenbasis."""
    cov = f @ f.T / alpha + np.eye(len(y)) / beta
    _, log_det = np.linalg.slogdet(cov)
    return -0.5 * (log_det + y @ np.linalg.solve(cov, y) + len(y) * np.log(2 * np.pi))


# ----------------------------------------------------------------------------- LogME, regression


def test_logme_regression_is_the_maximum_evidence_of_the_standardized_target() -> None:
    f, y = _linear_target(noise=1.0, n=12, dim=4)
    z = (y - y.mean()) / y.std()
    best = minimize(lambda ab: -_marginal_log_evidence(f, z, *np.exp(ab)), np.zeros(2), method="Nelder-Mead")
    assert logme_regression(f, y) == pytest.approx(-best.fun / len(y), rel=1e-6)


def test_logme_regression_ignores_the_targets_units_and_offset_and_sign() -> None:
    f, y = _linear_target(noise=0.5)
    base = logme_regression(f, y)
    for other in (1000.0 * y + 7.0, -y, y.astype(np.float32)):
        assert logme_regression(f, other) == pytest.approx(base, rel=1e-6)


def test_logme_regression_falls_as_the_target_gets_noisier() -> None:
    scores = [logme_regression(*_linear_target(noise)) for noise in (0.1, 0.5, 2.0, 10.0)]
    assert np.all(np.diff(scores) < 0), scores
    f, y = _linear_target(0.1)
    assert logme_regression(np.random.default_rng(5).normal(size=f.shape), y) < scores[-1]


# ----------------------------------------------------------------------------- LogME, multi-label


def _multilabel(separation: float, n: int = 150, n_labels: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random multi-hot labels; label l moves feature l by ``separation`` when present."""
    rng = np.random.default_rng(seed)
    y = (rng.random(size=(n, n_labels)) < 0.4).astype(np.float32)
    x = rng.normal(size=(n, 12))
    x[:, :n_labels] += separation * y
    return x, y


def test_logme_multilabel_is_the_mean_of_each_labels_binary_logme() -> None:
    x, y = _multilabel(2.0)
    per_label = [logme(x, y[:, j].astype(np.int64)) for j in range(y.shape[1])]
    assert logme_multilabel(x, y) == pytest.approx(np.mean(per_label), rel=1e-12)


def test_logme_multilabel_leaves_constant_labels_out_and_rises_with_separation() -> None:
    x, y = _multilabel(2.0)
    with_constant = np.column_stack([y, np.zeros(len(y)), np.ones(len(y))])  # never / always present
    assert logme_multilabel(x, with_constant) == pytest.approx(logme_multilabel(x, y), rel=1e-12)
    scores = [logme_multilabel(*_multilabel(sep)) for sep in (0.0, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(scores) > 0), scores


# ----------------------------------------------------------------------------- kNN


def test_knn_r2_is_one_on_exact_neighbours_and_near_zero_without_signal() -> None:
    x, y = _linear_target(noise=0.0, n=80)
    assert knn_r2(x, y, x[:20] * 2.0, y[:20], k=1) == 1.0  # cosine: a scaled copy is an exact match
    rng = np.random.default_rng(1)
    noise = knn_r2(rng.normal(size=(300, 8)), rng.normal(size=300), rng.normal(size=(200, 8)), rng.normal(size=200))
    assert -0.3 < noise < 0.1
    assert knn_r2(x[:60], y[:60], x[60:], y[60:]) > 0.3  # a smooth target: neighbours help


def test_knn_mean_average_precision_matches_scikit_learn_and_rewards_signal() -> None:
    x, y = _multilabel(4.0, n=200)
    good = knn_mean_average_precision(x[:150], y[:150], x[150:], y[150:], k=1)
    # k=1: each validation row's scores are its nearest training row's labels
    d = (
        1
        - (x[150:] / np.linalg.norm(x[150:], axis=1, keepdims=True))
        @ (x[:150] / np.linalg.norm(x[:150], axis=1, keepdims=True)).T
    )
    nearest = y[:150][d.argmin(1)]
    expected = np.mean([average_precision_score(y[150:, j], nearest[:, j]) for j in range(y.shape[1])])
    assert good == pytest.approx(expected, rel=1e-12)
    noise_x, noise_y = _multilabel(0.0, n=200, seed=3)
    assert knn_mean_average_precision(noise_x[:150], noise_y[:150], noise_x[150:], noise_y[150:]) < good


# ----------------------------------------------------------------------------- validation


def test_invalid_targets_raise_with_the_problem_named() -> None:
    f = np.random.default_rng(8).normal(size=(4, 3))
    with pytest.raises(ValueError, match="values are all 2"):
        logme_regression(f, np.full(4, 2.0))
    with pytest.raises(ValueError, match="3 values for 4 samples"):
        logme_regression(f, np.ones(3))
    with pytest.raises(ValueError, match="NaN/inf, first at sample 1"):
        logme_regression(f, np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        logme_regression(f, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"only 0 and 1 \(multi-hot\), got \[2\]"):
        logme_multilabel(f, np.array([[0, 1], [2, 0], [1, 1], [0, 0]]))
    with pytest.raises(ValueError, match="2-D multi-hot"):
        logme_multilabel(f, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="every label is constant"):
        logme_multilabel(f, np.array([[0, 1]] * 4))
    with pytest.raises(ValueError, match="2 validation samples whose values differ"):
        knn_r2(f, np.arange(4.0), f, np.ones(4))
    with pytest.raises(ValueError, match="1 label columns but train_labels have 2"):
        knn_mean_average_precision(f, np.eye(4, 2), f, np.eye(4, 1))
    with pytest.raises(ValueError, match="no validation sample has any label"):
        knn_mean_average_precision(f, np.eye(4, 2), f, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        knn_r2(f, np.arange(4.0), f, np.arange(4.0), k=0)

"""Transferability estimators: hand-computed values, reference computations and monotonicity."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.optimize import minimize

from headstart.transferability import hscore, knn_accuracy, leep, logme, nce
from headstart.transferability.estimators import _max_evidence, _spectrum


def _blobs(separation: float, dim: int = 16, n_per_class: int = 50, n_classes: int = 3):
    """Gaussian blobs: unit-variance noise around class means ``separation * e_c``."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    means = separation * np.eye(n_classes, dim)
    return means[labels] + rng.normal(size=(len(labels), dim)), labels


def _weight_space_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) of ``y = F w + e``, ``w ~ N(0, I/alpha)``, ``e ~ N(0, I/beta)``.

    Bishop, PRML eq. 3.86, with the D x D matrices built explicitly: ``D/2 log alpha
    + N/2 log beta - beta/2 |y - F m|^2 - alpha/2 |m|^2 - 1/2 log|A| - N/2 log 2 pi``,
    ``A = alpha I + beta F^T F``, ``m = beta A^-1 F^T y``. Ill-conditioned when beta >> alpha.
    """
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    _, log_det_a = np.linalg.slogdet(a)
    e_m = 0.5 * beta * np.sum((y - f @ m) ** 2) + 0.5 * alpha * m @ m
    log_prior_noise = 0.5 * d * np.log(alpha) + 0.5 * n * np.log(beta)
    return log_prior_noise - e_m - 0.5 * log_det_a - 0.5 * n * np.log(2 * np.pi)


def _marginal_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """The same evidence as the Gaussian density of y: ``y ~ N(0, F F^T / alpha + I / beta)``."""
    cov = f @ f.T / alpha + np.eye(len(y)) / beta
    _, log_det = np.linalg.slogdet(cov)
    return -0.5 * (log_det + y @ np.linalg.solve(cov, y) + len(y) * np.log(2 * np.pi))


# ----------------------------------------------------------------------------- LogME


def test_logme_increases_with_class_separation():
    scores = [logme(*_blobs(sep)) for sep in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(scores) > 0), scores


def test_logme_random_features_score_below_informative_ones():
    informative, labels = _blobs(3.0)
    random = np.random.default_rng(1).normal(size=informative.shape)
    assert logme(informative, labels) > logme(random, labels) + 0.1


def test_logme_is_invariant_to_sample_order():
    features, labels = _blobs(1.5)
    perm = np.random.default_rng(2).permutation(len(labels))
    assert logme(features[perm], labels[perm]) == pytest.approx(logme(features, labels), rel=1e-10)


def _tiny_case(shape: str) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([0, 0, 1, 1, 2, 2])
    dim = {"n>d": 3, "n<d": 8, "rank-deficient": 3}[shape]
    f = np.random.default_rng(3).normal(size=(6, dim)) + 3 * np.eye(3, dim)[labels]
    if shape == "rank-deficient":
        f = np.column_stack([f, f[:, 0]])  # duplicated column: rank 3 < D = 4 < N
    return f, labels  # n<d: rank 6 < D = 8, log|A| must count the two zero eigenvalues


@pytest.mark.parametrize("shape", ["n>d", "n<d", "rank-deficient"])
def test_logme_equals_direct_evidence_at_converged_alpha_beta(shape):
    f, labels = _tiny_case(shape)
    sigma, u = _spectrum(f)
    per_class = []
    for c in range(3):
        y = (labels == c).astype(float)
        fit = _max_evidence(sigma, u, y)
        assert max(fit.alpha, fit.beta) < 1e3  # this case has an interior maximum
        direct = _weight_space_log_evidence(f, y, fit.alpha, fit.beta)
        assert fit.evidence == pytest.approx(direct, rel=1e-9)
        marginal = _marginal_log_evidence(f, y, fit.alpha, fit.beta)
        assert fit.evidence == pytest.approx(marginal, rel=1e-9)
        # a maximum: nudging alpha or beta either way lowers the evidence ...
        for da, db in ((1.01, 1), (0.99, 1), (1, 1.01), (1, 0.99)):
            assert _weight_space_log_evidence(f, y, fit.alpha * da, fit.beta * db) < direct

        # ... and the global one: Nelder-Mead over (log alpha, log beta) finds nothing higher
        def negative(log_ab: np.ndarray, y: np.ndarray = y) -> float:
            return -_marginal_log_evidence(f, y, *np.exp(log_ab))

        best = minimize(negative, np.zeros(2), method="Nelder-Mead")
        assert -best.fun <= direct + 1e-7
        per_class.append(direct)
    assert logme(f, labels) == pytest.approx(np.mean(per_class) / len(f), rel=1e-9)


def test_logme_uninformative_features_reach_the_no_weights_bound():
    # random features, one-vs-rest target: the evidence is maximised as alpha -> inf (w = 0),
    # where y ~ N(0, I / beta) with beta = N / |y|^2: log evidence = -N/2 (log(2 pi |y|^2 / N) + 1)
    f = np.random.default_rng(3).normal(size=(6, 3))
    y = np.array([0.0, 0, 1, 1, 0, 0])
    fit = _max_evidence(*_spectrum(f), y)
    bound = -3 * (np.log(2 * np.pi * 2 / 6) + 1)
    assert fit.alpha > 1e6
    assert fit.evidence == pytest.approx(bound, abs=1e-6)
    marginal = _marginal_log_evidence(f, y, fit.alpha, fit.beta)
    assert fit.evidence == pytest.approx(marginal, rel=1e-9)


def test_logme_accepts_float32_features_and_skips_absent_classes():
    features, labels = _blobs(2.0)
    expected = logme(features, labels)
    assert logme(features.astype(np.float32), labels) == pytest.approx(expected, rel=1e-4)
    # classes 0, 2, 4 instead of 0, 1, 2: only the classes present are scored
    assert logme(features, labels * 2) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- H-score


def test_hscore_hand_computed_1d():
    # f = [0, 2, 4, 6] centred: [-3, -1, 1, 3], var = 20/3 (ddof 1)
    # class means per sample g = [-2, -2, 2, 2], var = 16/3  ->  H = (16/3) / (20/3) = 0.8
    f = np.array([[0.0], [2.0], [4.0], [6.0]])
    assert hscore(f, np.array([0, 0, 1, 1])) == pytest.approx(0.8)


def test_hscore_hand_computed_2d_with_uninformative_dimension():
    # dim 0 as above (H contribution 0.8); dim 1 = [1, -1, -1, 1] has equal class means (0, 0),
    # and the dims are uncorrelated after centring, so H = 0.8 + 0 / var = 0.8
    f = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, -1.0], [6.0, 1.0]])
    assert hscore(f, np.array([0, 0, 1, 1])) == pytest.approx(0.8)


def test_hscore_increases_with_separation_and_is_bounded():
    scores = [hscore(*_blobs(sep)) for sep in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(scores) > 0), scores
    assert 0 <= scores[0] and scores[-1] <= 2.0  # at most C - 1


def test_hscore_is_invariant_to_invertible_linear_maps():
    features, labels = _blobs(1.0, dim=4)
    mix = np.random.default_rng(4).normal(size=(4, 4)) + 3 * np.eye(4)
    assert hscore(features @ mix, labels) == pytest.approx(hscore(features, labels), rel=1e-8)


# ----------------------------------------------------------------------------- LEEP


def test_leep_hand_computed_two_samples():
    # joint P(y, z): y=0 row = [0.8, 0.2] / 2 = [0.4, 0.1]; y=1 row = [0.4, 0.6] / 2 = [0.2, 0.3]
    # P(z) = [0.6, 0.4]; P(y=0|z) = [2/3, 1/4]; P(y=1|z) = [1/3, 3/4]
    # sample 0: 0.8 * 2/3 + 0.2 * 1/4 = 7/12; sample 1: 0.4 * 1/3 + 0.6 * 3/4 = 7/12
    theta = np.array([[0.8, 0.2], [0.4, 0.6]])
    assert leep(theta, np.array([0, 1])) == pytest.approx(np.log(7 / 12))


def test_leep_hand_computed_four_samples():
    theta = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    # joint: y=0 -> [1.6, 0.4] / 4 = [0.4, 0.1]; y=1 -> [0.6, 1.4] / 4 = [0.15, 0.35]
    # P(z) = [0.55, 0.45]; P(0|z) = [8/11, 2/9]; P(1|z) = [3/11, 7/9]
    eep = [
        0.9 * 8 / 11 + 0.1 * 2 / 9,
        0.7 * 8 / 11 + 0.3 * 2 / 9,
        0.2 * 3 / 11 + 0.8 * 7 / 9,
        0.4 * 3 / 11 + 0.6 * 7 / 9,
    ]
    assert leep(theta, np.array([0, 0, 1, 1])) == pytest.approx(np.mean(np.log(eep)))


def test_leep_aligned_source_beats_random_and_is_never_positive():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=200)
    one_hot = np.eye(2)[labels]
    assert leep(one_hot, labels) == pytest.approx(0.0, abs=1e-12)  # source class = target class
    aligned = 0.9 * one_hot + 0.05
    scores = [leep(rng.dirichlet(np.ones(5), size=200), labels) for _ in range(5)]
    assert leep(aligned, labels) > max(scores)
    assert max(scores) <= 0 and leep(aligned, labels) <= 0
    assert min(scores) >= np.log(0.5) - 0.05  # no worse than the label prior (balanced, 2 classes)


# ----------------------------------------------------------------------------- NCE


def test_nce_perfect_correspondence_is_zero():
    source = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    assert nce(source, source % 2) == 0.0  # several source classes per target class is still exact


def test_nce_hand_computed():
    # z=0 (P = 3/4) holds y = [0, 0, 1]: H(Y|z=0) = -(2/3 log 2/3 + 1/3 log 1/3); z=1 is pure
    expected = -0.75 * -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    assert nce(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_nce_independent_labels_give_minus_log_c():
    source = np.repeat(np.arange(4), 3)  # every (z, y) pair exactly once
    target = np.tile(np.arange(3), 4)
    assert nce(source, target) == pytest.approx(-np.log(3))
    rng = np.random.default_rng(6)
    sampled = nce(rng.integers(0, 5, size=20_000), rng.integers(0, 4, size=20_000))
    assert sampled == pytest.approx(-np.log(4), abs=0.01)


# ----------------------------------------------------------------------------- kNN


def _on_circle(degrees: list[float]) -> np.ndarray:
    rad = np.deg2rad(degrees)
    return np.column_stack([np.cos(rad), np.sin(rad)])


def test_knn_separable_blobs_score_one():
    rng = np.random.default_rng(7)
    train_y, val_y = np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 10)
    centres = 10 * np.eye(3, 8)
    train_x = centres[train_y] + rng.normal(size=(60, 8))
    val_x = centres[val_y] + rng.normal(size=(30, 8))
    assert knn_accuracy(train_x, train_y, val_x, val_y, k=10) == 1.0
    # cosine: scaling a sample does not move it
    assert knn_accuracy(train_x * 5, train_y, val_x * 0.1, val_y, k=10) == 1.0


def test_knn_clips_k_to_train_size(caplog):
    # train: class 0 at 0 and 10 degrees, class 1 at 50; query at 31 degrees, label 1.
    # Its nearest neighbour is 50 (k=1: correct), but with all three neighbours the two
    # class-0 points outweigh it: 1/(1-cos 31) + 1/(1-cos 21) = 7.0 + 15.1 > 1/(1-cos 19) = 18.4
    train_x, train_y = _on_circle([0, 10, 50]), np.array([0, 0, 1])
    val_x, val_y = _on_circle([31]), np.array([1])
    assert knn_accuracy(train_x, train_y, val_x, val_y, k=1) == 1.0
    assert knn_accuracy(train_x, train_y, val_x, val_y, k=3) == 0.0
    with caplog.at_level(logging.INFO, logger="headstart.transferability.estimators"):
        assert knn_accuracy(train_x, train_y, val_x, val_y, k=10) == 0.0
    assert "clipped" in caplog.text


# ----------------------------------------------------------------------------- validation


def test_invalid_inputs_raise_with_the_problem_named():
    f = np.random.default_rng(8).normal(size=(4, 3))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="3 labels for 4 samples"):
        logme(f, y[:3])
    with pytest.raises(ValueError, match="1 distinct class"):
        hscore(f, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"NaN/inf value\(s\), first in row 2"):
        logme(np.where(np.arange(12).reshape(4, 3) == 7, np.nan, f), y)
    with pytest.raises(ValueError, match="2-D"):
        hscore(f[:, 0], y)
    with pytest.raises(ValueError, match="integers"):
        logme(f, y.astype(float))
    with pytest.raises(ValueError, match="negative value -1"):
        logme(f, np.array([0, 1, -1, 1]))
    with pytest.raises(ValueError, match="all zero"):
        logme(np.zeros((4, 3)), y)
    with pytest.raises(ValueError, match="sums to"):
        leep(np.ones((4, 2)), y)
    with pytest.raises(ValueError, match="negative value"):
        leep(np.array([[1.5, -0.5]] * 4), y)
    with pytest.raises(ValueError, match="source_labels has 3 labels"):
        nce(np.array([0, 1, 1]), y)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        knn_accuracy(f, y, f, y, k=0)
    with pytest.raises(ValueError, match="2 dimensions"):
        knn_accuracy(f, y, f[:, :2], y)


def test_shrinkage_hscore_still_ranks_when_samples_are_fewer_than_dimensions():
    rng = np.random.default_rng(3)
    y = np.arange(30) % 3
    noise = rng.normal(size=(30, 100))
    informative = noise.copy()
    informative[np.arange(30), y] += 4.0
    # the plain score saturates at C - 1 = 2 for both; the regularized one tells them apart
    assert hscore(noise, y) == pytest.approx(2.0) and hscore(informative, y) == pytest.approx(2.0)
    assert hscore(informative, y, shrinkage=True) > 2 * hscore(noise, y, shrinkage=True)
    # with plenty of samples and few dimensions the two agree closely
    big_y = np.arange(3000) % 3
    big = rng.normal(size=(3000, 5))
    big[np.arange(3000), big_y] += 1.0
    assert hscore(big, big_y, shrinkage=True) == pytest.approx(hscore(big, big_y), rel=0.1)

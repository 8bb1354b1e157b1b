"""Transferability estimators: score a frozen backbone on a target task without training a head.

Each estimator is a pure function from numpy arrays to a float; higher means "expected to transfer
better". They rank candidate backbones for one target task; the scores are not comparable across
tasks or across estimators.

- :func:`logme`: per-sample log of the maximum Bayesian linear-model evidence (You et al., 2021).
- :func:`hscore`: H-score, ``tr(cov(f)^+ cov(E[f|y]))`` (Bao et al., 2019).
- :func:`leep`: log expected empirical prediction from source-class probabilities (Nguyen et al.,
  2020).
- :func:`nce`: negative conditional entropy ``-H(Y|Z)`` of target labels given hard source labels
  (Tran et al., 2019).
- :func:`knn_accuracy`: cosine k-nearest-neighbour accuracy on held-out features.

Features are float arrays of shape ``(N, D)``; labels are integer arrays of shape ``(N,)`` with
values ``0..C-1``. Bad inputs raise :class:`ValueError` naming the problem and the fix.
Real-valued and multi-label targets have theirs in :mod:`headstart.transferability.target_estimators`.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.neighbors import KNeighborsClassifier

__all__ = ["hscore", "knn_accuracy", "leep", "logme", "nce"]

logger = logging.getLogger(__name__)

_LOGME_MAX_ITER = 1000  # the fixed point is slow when N <= D (hundreds of steps, not 11)
_LOGME_RTOL = 1e-8  # stop when alpha / beta changes by less than this (relative)
_LOGME_ETOL = 1e-14  # or when the per-sample log evidence changes by less than this
_TINY = 1e-300  # guards the fixed-point divisions against an exact zero
_PROB_SUM_ATOL = 1e-3  # rows of source probabilities must sum to 1 within this


# ----------------------------------------------------------------------------- validation


def _check_features(features: ArrayLike, name: str = "features") -> NDArray[np.float64]:
    """``features`` as a finite float64 ``(N, D)`` array with N >= 1 and D >= 1."""
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (N, D), got shape {arr.shape}; "
            f"reshape it, e.g. {name}.reshape(len({name}), -1)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); need N >= 1 and D >= 1")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}; use .astype(float)")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s), first in row {int(rows[0])}; "
            "drop or impute those samples before scoring"
        )
    return out


def _check_labels(
    labels: ArrayLike,
    n: int | None,
    name: str = "labels",
    min_classes: int = 2,
) -> NDArray[np.int64]:
    """``labels`` as int64 ``(N,)`` >= 0 with ``min_classes`` distinct classes, N == n if given."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (N,), got shape {arr.shape}; flatten it")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty; pass one label per sample")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} labels for {n} samples; pass one per sample")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(
            f"{name} must be integers 0..C-1, got dtype {arr.dtype}; "
            "map class names to indices (e.g. np.unique(labels, return_inverse=True)[1])"
        )
    out = arr.astype(np.int64)
    if out.min() < 0:
        raise ValueError(f"{name} contains the negative value {int(out.min())}; use classes 0..C-1")
    n_classes = len(np.unique(out))
    if n_classes < min_classes:
        raise ValueError(
            f"{name} has {n_classes} distinct class(es); need at least {min_classes} "
            "to measure how well features separate classes"
        )
    return out


def _check_probs(source_probs: ArrayLike) -> NDArray[np.float64]:
    """``source_probs`` as an ``(N, Z)`` float64 array of non-negative rows summing to 1."""
    probs = _check_features(source_probs, name="source_probs")
    if probs.min() < 0:
        raise ValueError(
            f"source_probs contains the negative value {probs.min():.4g}; "
            "pass softmax probabilities, not logits (apply scipy.special.softmax(logits, axis=1))"
        )
    sums = probs.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > _PROB_SUM_ATOL:
        raise ValueError(
            f"source_probs row {worst} sums to {sums[worst]:.4g}, not 1; "
            "pass softmax probabilities over the source classes, not logits"
        )
    return probs


# ----------------------------------------------------------------------------- LogME


class _Evidence(NamedTuple):
    """Maximised log evidence (not divided by N) of one target and the alpha, beta that reach it."""

    evidence: float
    alpha: float
    beta: float


def _spectrum(features: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Non-zero eigenvalues ``sigma`` (k,) of ``F^T F`` and the left singular vectors ``U`` (N, k).

    Uses the smaller Gram matrix: ``F^T F`` (D x D) when N > D, else ``F F^T`` (N x N).
    """
    n, d = features.shape
    gram = features.T @ features if n > d else features @ features.T
    sigma, vecs = np.linalg.eigh(gram)
    keep = sigma > max(float(sigma.max()), 0.0) * max(n, d) * np.finfo(np.float64).eps
    sigma, vecs = sigma[keep], vecs[:, keep]
    u = features @ vecs / np.sqrt(sigma) if n > d else vecs  # right vectors v -> u = F v / |F v|
    return sigma, u


def _moments(
    sigma: NDArray[np.float64], x2: NDArray[np.float64], out_of_span: float, t: float
) -> tuple[float, float, float]:
    """``gamma``, ``|m|^2`` and ``|y - F m|^2`` at ``t = alpha / beta``; m is the posterior mean."""
    gamma = float((sigma / (t + sigma)).sum())  # effective number of well-determined weights
    m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
    res2 = float((x2 * (t / (t + sigma)) ** 2).sum()) + out_of_span
    return gamma, m2, res2


def _log_evidence(
    sigma: NDArray[np.float64],
    n: int,
    m2: float,
    res2: float,
    alpha: float,
    beta: float,
) -> float:
    """``log p(y | F, alpha, beta)`` of N targets, given the moments at ``t = alpha / beta``.

    The textbook form is ``D/2 log alpha + N/2 log beta - beta/2 |y - F m|^2 - alpha/2 |m|^2
    - 1/2 log|A| - N/2 log 2 pi`` with ``A = alpha I + beta F^T F``. As ``log|A| = D log alpha +
    sum log(1 + sigma / t)`` (each of the D - k zero eigenvalues of ``F^T F`` adds ``log alpha``),
    the ``log alpha`` terms cancel, which keeps the sum exact when alpha grows huge.
    """
    return float(
        -0.5 * np.log1p(sigma * (beta / alpha)).sum()
        + 0.5 * n * np.log(beta)
        - 0.5 * beta * res2
        - 0.5 * alpha * m2
        - 0.5 * n * np.log(2.0 * np.pi)
    )


def _max_evidence(
    sigma: NDArray[np.float64],
    u: NDArray[np.float64],
    y: NDArray[np.float64],
) -> _Evidence:
    """Maximise the evidence of ``y = F w + e``, ``w ~ N(0, I/alpha)``, ``e ~ N(0, I/beta)``.

    MacKay's fixed point: ``alpha = gamma / |m|^2``, ``beta = (N - gamma) / |y - F m|^2``, all in
    the eigenbasis of ``F^T F`` (``sigma`` its non-zero eigenvalues, ``u`` the matching left
    singular vectors of ``F``). Stops when ``alpha / beta`` or the evidence settles; where the
    maximum lies at a boundary (alpha or beta -> inf) the evidence settles at its supremum.
    """
    n = len(y)
    proj = u.T @ y  # coordinates of y on the column space of F
    x2 = proj**2
    # |y|^2 outside the column space; from the residual vector, not |y|^2 - |proj|^2 (cancellation)
    out_of_span = float(np.sum((y - u @ proj) ** 2)) if len(sigma) < n else 0.0
    alpha, beta, previous = 1.0, 1.0, -np.inf
    for steps in range(1, _LOGME_MAX_ITER + 1):  # noqa: B007 (logged after the loop)
        t = alpha / beta
        gamma, m2, res2 = _moments(sigma, x2, out_of_span, t)
        alpha = gamma / max(m2, _TINY)
        beta = max(n - gamma, _TINY) / max(res2, _TINY)
        _, m2, res2 = _moments(sigma, x2, out_of_span, alpha / beta)
        evidence = _log_evidence(sigma, n, m2, res2, alpha, beta)
        if abs(alpha / beta - t) <= _LOGME_RTOL * t or abs(evidence - previous) <= _LOGME_ETOL * n:
            break
        previous = evidence
    cap = _LOGME_MAX_ITER
    logger.debug("LogME fixed point: %d/%d steps, alpha=%.4g beta=%.4g", steps, cap, alpha, beta)
    return _Evidence(evidence, alpha, beta)


def logme(features: ArrayLike, labels: ArrayLike) -> float:
    """LogME: per-sample log maximum evidence of a Bayesian linear model from features to labels.

    You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021 (http://proceedings.mlr.press/v139/you21b.html). For each class ``c``
    present, the one-vs-rest target ``y_c = [labels == c]`` is fitted by ``y = F w + e`` with
    ``w ~ N(0, I/alpha)``, ``e ~ N(0, I/beta)``; ``log p(y_c | F, alpha, beta)`` is maximised over
    alpha, beta by the fixed-point iteration, using one eigen-decomposition of the smaller Gram
    matrix for all classes. Returns the mean over classes divided by N. Features are used as given
    (no centring). Two departures from the authors' code, both towards the exact maximum: the
    iteration runs to convergence (up to 1000 steps; when N <= D it can need hundreds, and 11
    steps can leave the score ~0.05 short), and ``log|A|`` counts the zero eigenvalues of
    ``F^T F`` when rank(F) < D (their fixed-point variant drops them).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 50)
        >>> good = logme(rng.normal(size=(100, 8)) + 3 * y[:, None], y)
        >>> bad = logme(rng.normal(size=(100, 8)), y)
        >>> good > bad
        True
    """
    f = _check_features(features)
    y = _check_labels(labels, len(f))
    return _mean_evidence(f, _one_vs_rest(y))


def _one_vs_rest(y: NDArray[np.int64]) -> list[NDArray[np.float64]]:
    """The indicator target ``[y == c]`` of every class present."""
    return [(y == c).astype(np.float64) for c in np.unique(y)]


def _mean_evidence(f: NDArray[np.float64], targets: list[NDArray[np.float64]]) -> float:
    """Mean over ``targets`` of the maximised log evidence of each, divided by N (one spectrum for all)."""
    sigma, u = _spectrum(f)
    if len(sigma) == 0:
        raise ValueError("features are all zero (rank 0); LogME needs features that vary")
    evidences = [_max_evidence(sigma, u, t).evidence for t in targets]
    return float(np.mean(evidences) / len(f))


# ----------------------------------------------------------------------------- H-score


def hscore(features: ArrayLike, labels: ArrayLike, shrinkage: bool = False) -> float:
    """H-score: ``tr(pinv(cov(f)) @ cov(g))``, ``g`` the class-conditional mean feature per sample.

    Bao, Li, Huang, Zheng, Chen, "An Information-theoretic Approach to Transferability in Task
    Transfer Learning", ICIP 2019. Features are centred first. Between 0 and ``min(C - 1, D)``;
    higher means class means are far apart relative to the overall feature spread.

    With fewer samples than dimensions ``cov(f)`` is singular and the plain score saturates at
    ``C - 1`` for every backbone. ``shrinkage=True`` gives the regularized H-score of Ibrahim,
    Ponomareva and Mazumder ("Newer is not always better", ICLR 2023): ``cov(f)`` shrunk towards a
    scaled identity by the Ledoit-Wolf weight ``a``, and ``cov(g)`` scaled by ``1 - a``.

    Example:
        >>> round(hscore([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1]), 6)  # 1-D: var(g) / var(f)
        0.8
    """
    f = _check_features(features)
    y = _check_labels(labels, len(f))
    if len(f) < 2:
        raise ValueError("hscore needs at least 2 samples to estimate a covariance")
    f = f - f.mean(axis=0)
    g = np.zeros_like(f)
    for c in np.unique(y):
        rows = y == c
        g[rows] = f[rows].mean(axis=0)
    cov_g = np.atleast_2d(np.cov(g, rowvar=False))
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf(assume_centered=True).fit(f)
        cov_f = lw.covariance_ * len(f) / (len(f) - 1)  # np.cov's unbiased scale, as for cov_g
        return float(np.trace(np.linalg.solve(cov_f, (1.0 - lw.shrinkage_) * cov_g)))
    cov_f = np.atleast_2d(np.cov(f, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, hermitian=True) @ cov_g))


# ----------------------------------------------------------------------------- LEEP and NCE


def leep(source_probs: ArrayLike, labels: ArrayLike) -> float:
    """LEEP: mean log-likelihood of the target labels under the source model's "dummy" classifier.

    Nguyen, Hassner, Seeger, Archambeau, "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020. With ``theta = source_probs`` (N, Z) softmax outputs over
    the source classes: the empirical joint ``P(y, z) = sum_{i: y_i = y} theta_iz / N`` gives
    ``P(y | z) = P(y, z) / P(z)`` and the score is ``mean_i log sum_z P(y_i | z) theta_iz``.
    Always <= 0; closer to 0 is better.

    Example:
        >>> round(leep([[0.8, 0.2], [0.4, 0.6]], [0, 1]), 6)  # log(7 / 12)
        -0.538997
    """
    theta = _check_probs(source_probs)
    y = _check_labels(labels, len(theta))
    n = len(theta)
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))
    np.add.at(joint, y, theta / n)  # (C, Z)
    p_z = joint.sum(axis=0)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    eep = (theta * cond[y]).sum(axis=1)  # expected empirical prediction of each sample's label
    return float(np.mean(np.log(eep)))


def nce(source_labels: ArrayLike, labels: ArrayLike) -> float:
    """NCE: negative conditional entropy ``-H(Y | Z)`` of target labels given hard source labels.

    Tran, Nguyen, Hassner, "Transferability and Hardness of Supervised Classification Tasks", ICCV
    2019. ``source_labels`` are the source model's hard predictions (e.g. ``argmax`` of its
    softmax); the empirical joint ``P(y, z)`` gives ``sum_{y,z} P(y, z) log P(y | z)``, in nats.
    0 when ``z`` determines ``y``; ``-log C`` when they are independent and ``y`` is uniform.

    Example:
        >>> nce([0, 0, 1, 1], [1, 1, 0, 0])
        0.0
    """
    y = _check_labels(labels, None)
    z = _check_labels(source_labels, len(y), name="source_labels", min_classes=1)
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0 / len(y))
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / np.where(p_z > 0, p_z, 1.0))[nz])))


# ----------------------------------------------------------------------------- kNN


def _knn_inputs(
    train_features: ArrayLike, val_features: ArrayLike, k: int, who: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Checked train and validation features and ``k`` clipped to the train size."""
    x_train = _check_features(train_features, name="train_features")
    x_val = _check_features(val_features, name="val_features")
    if x_val.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"val_features have {x_val.shape[1]} dimensions but train_features have "
            f"{x_train.shape[1]}; extract both with the same backbone"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}; the usual choice is 10 or 20")
    k_used = min(int(k), len(x_train))
    if k_used < k:
        logger.info("%s: k=%d clipped to the %d training samples", who, k, k_used)
    return x_train, x_val, k_used


def knn_accuracy(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    val_features: ArrayLike,
    val_labels: ArrayLike,
    k: int = 10,
) -> float:
    """Accuracy of a cosine-similarity k-nearest-neighbour classifier fitted on the train features.

    Cosine distance is the Euclidean geometry of L2-normalised features; neighbours vote with
    weight ``1 / distance`` (an exact match wins outright). ``k`` is clipped to the train size.

    Example:
        >>> knn_accuracy([[1, 0], [0, 1]], [0, 1], [[2, 0.1], [0.1, 3]], [0, 1], k=1)
        1.0
    """
    x_train, x_val, k_used = _knn_inputs(train_features, val_features, k, "knn_accuracy")
    y_train = _check_labels(train_labels, len(x_train), name="train_labels")
    y_val = _check_labels(val_labels, len(x_val), name="val_labels", min_classes=1)
    clf = KNeighborsClassifier(n_neighbors=k_used, metric="cosine", weights="distance")
    clf.fit(x_train, y_train)
    return float(np.mean(clf.predict(x_val) == y_val))

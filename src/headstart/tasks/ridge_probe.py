"""The regression probe: ridge regression of one standardized real-valued target on cached features.

Closed form for a whole grid of penalties from one eigendecomposition of the smaller Gram matrix of the
scaled training features, the penalty chosen on validation, and the feature centering and scaling folded
into the returned weights (like :mod:`headstart.tasks.softmax_probe`), so the probe loads into the network's
linear head and the saved network predicts exactly what the probe did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from headstart.errors import HeadstartError
from headstart.tasks.base import ProbeResult, feature_scale

__all__ = ["RIDGE_ALPHAS", "fit_ridge", "ridge_path"]

# Features are centered and divided by ONE common scale (the root mean variance over dimensions), not each by
# its own std: per-dimension standardization blows up directions in which the backbone barely varies, and the
# folded head then multiplies them by large weights (norm 8.5 against 0.71 on elpv-severity, mobilenet_v2),
# so the first fine-tuning steps of lp-ft move the value a lot; the common scale lets the penalty shrink those
# directions instead (validation R2 0.403 against 0.397 there, bench/README.md).
# The penalty is on scikit-learn's sum-of-squares scale (``||y - Zw||^2 + alpha ||w||^2``), so it competes
# with the eigenvalues of Z^T Z for Z scaled so that its variances average 1: they sum to n * D, so they
# average about D (1280) when n < D and about n when n > D, and the leading ones of correlated backbone
# features are 10-100x that. Half decades from 1e-2 (next to plain least squares / the minimum-norm
# interpolator) to 1e5 (the weight shrunk hard towards zero in every direction but the strongest) cover small
# and large training sets alike, and each extra penalty costs only a matrix-vector product.
RIDGE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 5, 15))


def ridge_path(z: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Ridge weights ``(D, A)`` minimizing ``||y - z w||^2 + alpha ||w||^2`` for each of the ``A`` alphas.

    ``z`` (n, D) and ``y`` (n,) must be centered (no intercept here). One eigendecomposition of the smaller
    of ``z^T z`` (D, D) and ``z z^T`` (n, n) serves every alpha.

    Example:
        >>> z = np.array([[-1.0], [0.0], [1.0]])
        >>> ridge_path(z, 2.0 * z[:, 0], np.array([1e-9, 2.0])).round(6).tolist()
        [[2.0, 1.0]]
    """
    n, d = z.shape
    alphas = np.asarray(alphas, dtype=np.float64)[None, :]  # (1, A)
    if n >= d:
        s, v = np.linalg.eigh(z.T @ z)  # (D,), (D, D)
        q = v.T @ (z.T @ y)  # (D,)
        return v @ (q[:, None] / (np.clip(s, 0.0, None)[:, None] + alphas))
    s, u = np.linalg.eigh(z @ z.T)  # (n,), (n, n): the kernel form, w = z^T (z z^T + alpha I)^-1 y
    q = u.T @ y  # (n,)
    return z.T @ (u @ (q[:, None] / (np.clip(s, 0.0, None)[:, None] + alphas)))


def _check(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, alphas: np.ndarray) -> None:
    """Raise a HeadstartError naming the bad input unless shapes agree, values are finite and alphas positive."""
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise HeadstartError(
                f"{split} features have shape {x.shape} and targets {y.shape}; pass (n, D) features and one "
                f"real target per row (n > 0) for the {split} split"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise HeadstartError(f"the {split} features or targets hold NaN or infinite values; drop or fix those rows")
    if x_val.shape[1] != x_train.shape[1]:
        raise HeadstartError(
            f"validation features have {x_val.shape[1]} columns but training features {x_train.shape[1]}; "
            "cache both splits with the same backbone"
        )
    if alphas.ndim != 1 or len(alphas) == 0 or not (np.isfinite(alphas).all() and (alphas > 0).all()):
        raise HeadstartError(
            f"ridge alphas {alphas.tolist()} must be a non-empty list of positive numbers; use e.g. "
            "[0.1, 1, 10, 100, 1000]"
        )


def _record(alpha: float, y_train: np.ndarray, p_train: np.ndarray, y_val: np.ndarray, p_val: np.ndarray) -> dict:
    """The history entry of one alpha (``C`` holds the alpha so generic ``probe C=...`` printing keeps working)."""
    from sklearn.metrics import mean_absolute_error, r2_score

    return {
        "C": alpha,
        "train_loss": float(np.mean((y_train - p_train) ** 2)),
        "val_loss": float(np.mean((y_val - p_val) ** 2)),
        "val_r2": float(r2_score(y_val, p_val)) if len(y_val) > 1 else 0.0,
        "val_mae": float(mean_absolute_error(y_val, p_val)),
    }


def fit_ridge(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, alphas: Sequence[float]
) -> ProbeResult:
    """Ridge regression of one real target (already standardized by the caller) for every alpha; best on validation.

    Features are centered and scaled by :func:`~headstart.tasks.base.feature_scale`; the bias is not
    penalized (scikit-learn's ``Ridge(alpha)`` on the scaled features).
    Best = lowest validation MSE, ties to the larger alpha.
    ``history`` holds one record per alpha, ascending: ``C`` (the alpha), ``train_loss`` and ``val_loss``
    (MSE), ``val_r2`` and ``val_mae``. The returned head works on raw features, float64: ``weight`` (1, D),
    ``bias`` (1,), with ``x @ weight.T + bias`` equal to the prediction on the scaled features.
    """
    x_train, x_val = np.asarray(x_train, dtype=np.float64), np.asarray(x_val, dtype=np.float64)
    y_train, y_val = np.asarray(y_train, dtype=np.float64), np.asarray(y_val, dtype=np.float64)
    grid = np.sort(np.asarray(alphas, dtype=np.float64).ravel())
    _check(x_train, y_train, x_val, y_val, grid)
    mu, sd = feature_scale(x_train)
    ztr, zval = (x_train - mu) / sd, (x_val - mu) / sd
    z_mean, y_mean = ztr.mean(0), y_train.mean()  # ~0 and ~0; kept exact so the unpenalized bias is exact
    w = ridge_path(ztr - z_mean, y_train - y_mean, grid)  # (D, A)
    b = y_mean - z_mean @ w  # (A,)
    p_train, p_val = ztr @ w + b, zval @ w + b  # (n, A) each
    history = [_record(float(a), y_train, p_train[:, i], y_val, p_val[:, i]) for i, a in enumerate(grid)]
    val_mse = np.array([h["val_loss"] for h in history])
    best = int(np.flatnonzero(val_mse == val_mse.min())[-1])  # ties: the larger alpha (grid is ascending)
    weight = w[:, best] / sd  # fold the scaling into the weights
    bias = b[best] - weight @ mu
    return ProbeResult(weight[None, :], np.array([bias], dtype=np.float64), float(grid[best]), history)

"""Regression metrics over a whole evaluated set: scikit-learn and scipy point values, bootstrap intervals,
plain-language warnings, and the error per range of the true value (for the report).

Undefined values (R² and the correlations of a constant target, correlations of constant predictions) are
None, never NaN, so the dict goes straight into ``metrics.json``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.metrics.bootstrap import percentile_interval
from headstart.metrics.classification import MIN_RELIABLE_SUPPORT

__all__ = ["bootstrap_regression_ci", "error_by_range", "regression_metrics"]

_CELLS_PER_CHUNK = 1_000_000  # resampled values held at once (B * n); ranks need a few such arrays per chunk


def _check_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 1-D arrays of one non-zero length with finite values, else a HeadstartError."""
    yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if yt.ndim != 1 or yp.ndim != 1:
        raise HeadstartError(
            f"y_true has shape {yt.shape} and y_pred {yp.shape}; pass one real value per example as 1-D arrays"
        )
    if len(yt) != len(yp):
        raise HeadstartError(f"{len(yt)} true values but {len(yp)} predictions; pass one prediction per example")
    if len(yt) == 0:
        raise HeadstartError("there are no examples to compute metrics on; evaluate on a split that has some")
    for name, values in (("y_true", yt), ("y_pred", yp)):
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise HeadstartError(
                f"{name} holds {len(bad)} non-finite values (first: {values[bad[0]]} at row {bad[0]}); "
                "drop or fix those rows"
            )
    return yt, yp


def _constant(values: np.ndarray) -> bool:
    return bool(values.min() == values.max())


def _finite(value: float) -> float | None:
    """``value`` as a float, or None when it is not finite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _resampled(yt: np.ndarray, yp: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAE, R² and Spearman's rho per resample row of ``idx`` (B, n); NaN where R² or rho is undefined."""
    from scipy.stats import rankdata

    n = idx.shape[1]
    t, p = yt[idx], yp[idx]  # (B, n) each
    mae = np.abs(t - p).mean(1)
    t_flat = t.min(1) == t.max(1)  # a constant target row: R² and rho undefined
    ss_res = ((t - p) ** 2).sum(1)
    ss_tot = ((t - t.mean(1, keepdims=True)) ** 2).sum(1)
    r2 = np.where(t_flat, np.nan, 1.0 - ss_res / np.where(t_flat, 1.0, ss_tot))
    mid = (n + 1) / 2.0  # the mean of average ranks, exactly
    rt, rp = rankdata(t, axis=1) - mid, rankdata(p, axis=1) - mid  # (B, n) centered ranks
    undefined = t_flat | (p.min(1) == p.max(1))
    denom = np.sqrt((rt * rt).sum(1) * (rp * rp).sum(1))
    rho = np.where(undefined, np.nan, (rt * rp).sum(1) / np.where(undefined, 1.0, denom))
    return mae, r2, rho


def bootstrap_regression_ci(
    y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, list[float] | None]:
    """95% percentile-bootstrap intervals ``[lo, hi]`` of ``mae``, ``r2`` and ``spearman``.

    Each of the ``n_boot`` resamples draws ``n`` examples with replacement (``numpy.random.default_rng(seed)``),
    vectorized over resamples in chunks. Resamples whose target (or, for rho, prediction) is constant are
    skipped; a value is None when no resample defines it, or when ``n_boot`` is 0.

    Example:
        >>> y = np.arange(20.0)
        >>> ci = bootstrap_regression_ci(y, y + 1.0, n_boot=200)
        >>> ci["mae"], ci["spearman"]
        ([1.0, 1.0], [1.0, 1.0])
    """
    if n_boot < 0:
        raise HeadstartError(f"n_boot={n_boot} is negative; use 0 to skip the bootstrap or e.g. 1000 resamples")
    yt, yp = _check_inputs(y_true, y_pred)
    n = len(yt)
    if n_boot == 0:
        return {"mae": None, "r2": None, "spearman": None}
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // n)
    parts = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))  # (B, n) resampled example indices
        parts.append(_resampled(yt, yp, idx))
    mae, r2, rho = (np.concatenate(col) for col in zip(*parts, strict=True))
    return {"mae": percentile_interval(mae), "r2": percentile_interval(r2), "spearman": percentile_interval(rho)}


def _regression_warnings(yt: np.ndarray, yp: np.ndarray) -> list[str]:
    """Plain-language warnings: a thin test set, a constant target, constant predictions."""
    out: list[str] = []
    n = len(yt)
    if n < MIN_RELIABLE_SUPPORT:
        out.append(f"only {n} test example{'s' if n != 1 else ''}; the intervals are wide")
    if _constant(yt):
        out.append(f"every test target equals {yt[0]:g}; r2, spearman and pearson are undefined (reported as None)")
    elif _constant(yp):
        out.append(f"every prediction equals {yp[0]:g}; spearman and pearson are undefined (reported as None)")
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """All metrics of one evaluated (non-empty) set as a JSON-ready dict; None where a value is undefined.

    Keys: ``mae``, ``rmse``, ``r2``, ``spearman``, ``pearson``, ``n``, ``ci95`` (95% percentile bootstrap
    intervals ``[lo, hi]`` of ``mae``, ``r2`` and ``spearman``, see :func:`bootstrap_regression_ci`) and
    ``warnings``. Point values come from scikit-learn (MAE, RMSE, R²) and scipy (Spearman's rho, Pearson's r).

    Example:
        >>> m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 3.0, 3.5]), n_boot=0)
        >>> m["mae"], m["r2"], m["spearman"], m["ci95"]["mae"]
        (0.25, 0.9, 1.0, None)
        >>> m["warnings"]
        ['only 4 test examples; the intervals are wide']
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    yt, yp = _check_inputs(y_true, y_pred)
    target_varies = not _constant(yt)
    correlated = target_varies and not _constant(yp)
    return {
        "mae": float(mean_absolute_error(yt, yp)),
        "rmse": float(np.sqrt(mean_squared_error(yt, yp))),
        "r2": _finite(r2_score(yt, yp)) if target_varies else None,
        "spearman": _finite(spearmanr(yt, yp).statistic) if correlated else None,
        "pearson": _finite(pearsonr(yt, yp).statistic) if correlated else None,
        "n": int(len(yt)),
        "ci95": bootstrap_regression_ci(yt, yp, n_boot=n_boot, seed=seed),
        "warnings": _regression_warnings(yt, yp),
    }


def error_by_range(y_true: np.ndarray, y_pred: np.ndarray, bins: int = 4) -> list[dict[str, Any]]:
    """MAE per quantile range of the true value: ``[{"low", "high", "n", "mae"}, ...]``, lowest range first.

    Each range starts at the observed true value at a ``1/bins`` quantile of the sorted rows, so ranges hold
    about ``n / bins`` rows each and none is empty; tied values can merge ranges (fewer than ``bins`` come
    back). A range holds ``low <= y_true < high``; the last holds ``low <= y_true <= high``. Every row falls
    in exactly one range.

    Example:
        >>> error_by_range(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 3.0, 5.0]), bins=2)
        [{'low': 0.0, 'high': 2.0, 'n': 2, 'mae': 0.0}, {'low': 2.0, 'high': 3.0, 'n': 2, 'mae': 1.5}]
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise HeadstartError(f"bins={bins!r} is not a positive whole number; use e.g. bins=4 (quartiles)")
    yt, yp = _check_inputs(y_true, y_pred)
    ordered = np.sort(yt)
    lows = np.unique(ordered[(np.arange(bins) * len(yt)) // bins])  # observed values starting each range
    highs = np.append(lows[1:], ordered[-1])
    which = np.searchsorted(lows[1:], yt, side="right")  # range index of each row
    err = np.abs(yt - yp)
    out: list[dict[str, Any]] = []
    for i, (low, high) in enumerate(zip(lows.tolist(), highs.tolist(), strict=True)):
        rows = which == i
        out.append({"low": low, "high": high, "n": int(rows.sum()), "mae": float(err[rows].mean())})
    return out

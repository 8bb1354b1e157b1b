import doctest
import json

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import headstart.metrics.regression as regression
from headstart.errors import HeadstartError
from headstart.metrics.bootstrap import percentile_interval
from headstart.metrics.regression import bootstrap_regression_ci, error_by_range, regression_metrics


def _data(n: int, seed: int, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Severity-like targets (skewed, with ties from rounding) and noisy predictions of them."""
    rng = np.random.default_rng(seed)
    y = np.round(rng.gamma(2.0, 1.5, n), 1)
    return y, np.round(y + rng.normal(0.0, noise, n), 1)


def _reference(y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int) -> dict:
    """The slow, obvious bootstrap with scikit-learn and scipy on the same resampled indices."""
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
    mae, r2, rho = [], [], []
    for rows in idx:
        yt, yp = y[rows], pred[rows]
        mae.append(mean_absolute_error(yt, yp))
        if len(np.unique(yt)) > 1:
            r2.append(r2_score(yt, yp))
            if len(np.unique(yp)) > 1:
                rho.append(spearmanr(yt, yp).statistic)
    return {
        "mae": percentile_interval(np.array(mae)),
        "r2": percentile_interval(np.array(r2)),
        "spearman": percentile_interval(np.array(rho)),
    }


@pytest.mark.parametrize("n", [7, 60, 250])
def test_point_values_equal_scikit_learn_and_scipy(n: int) -> None:
    y, pred = _data(n, seed=n)
    m = regression_metrics(y, pred, n_boot=0)
    assert set(m) == {"mae", "rmse", "r2", "spearman", "pearson", "n", "ci95", "warnings"}
    assert m["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert m["r2"] == pytest.approx(r2_score(y, pred), rel=1e-12)
    assert m["spearman"] == pytest.approx(spearmanr(y, pred).statistic, rel=1e-12)
    assert m["pearson"] == pytest.approx(pearsonr(y, pred).statistic, rel=1e-12)
    assert m["n"] == n and m["ci95"] == {"mae": None, "r2": None, "spearman": None}


@pytest.mark.parametrize("n", [12, 40, 150])
def test_bootstrap_matches_a_scipy_loop_on_the_same_resamples(n: int) -> None:
    y, pred = _data(n, seed=n + 1, noise=1.5)
    got = bootstrap_regression_ci(y, pred, n_boot=80, seed=5)
    want = _reference(y, pred, n_boot=80, seed=5)
    for key in ("mae", "r2", "spearman"):
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_chunked_resampling_draws_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    y, pred = _data(50, seed=1)
    whole = bootstrap_regression_ci(y, pred, n_boot=40, seed=3)
    monkeypatch.setattr(regression, "_CELLS_PER_CHUNK", 50 * 7)  # 7 resamples per chunk
    assert bootstrap_regression_ci(y, pred, n_boot=40, seed=3) == whole


def test_seeded() -> None:
    y, pred = _data(80, seed=2)
    assert regression_metrics(y, pred, 100, seed=1) == regression_metrics(y, pred, 100, seed=1)
    assert regression_metrics(y, pred, 100, seed=1)["ci95"] != regression_metrics(y, pred, 100, seed=2)["ci95"]


def test_intervals_bracket_the_point_values_and_shrink_with_n() -> None:
    widths = []
    for n in (40, 1000):
        y, pred = _data(n, seed=n)
        m = regression_metrics(y, pred, n_boot=500, seed=0)
        for key in ("mae", "r2", "spearman"):
            lo, hi = m["ci95"][key]
            assert lo <= m[key] <= hi, key
        widths.append(m["ci95"]["mae"][1] - m["ci95"]["mae"][0])
    assert widths[1] < widths[0] / 3  # width ~ 1/sqrt(n): 5x narrower at 25x the examples


def test_constant_target_gives_none_and_a_warning() -> None:
    y = np.full(30, 2.5)
    m = regression_metrics(y, y + np.linspace(-1, 1, 30), n_boot=100)
    assert m["r2"] is None and m["spearman"] is None and m["pearson"] is None
    assert m["ci95"]["r2"] is None and m["ci95"]["spearman"] is None and m["ci95"]["mae"] is not None
    assert m["mae"] == pytest.approx(mean_absolute_error(y, y + np.linspace(-1, 1, 30)))
    assert any("every test target equals 2.5" in w and "undefined" in w for w in m["warnings"])
    json.dumps(m, allow_nan=False)  # JSON-ready: no NaN anywhere


def test_constant_predictions_keep_r2_but_not_the_correlations() -> None:
    y, _ = _data(40, seed=3)
    m = regression_metrics(y, np.full(40, y.mean()), n_boot=100)
    assert m["r2"] == pytest.approx(0.0, abs=1e-12)
    assert m["spearman"] is None and m["pearson"] is None and m["ci95"]["spearman"] is None
    assert any("every prediction equals" in w for w in m["warnings"])
    json.dumps(m, allow_nan=False)


def test_small_test_set_warns_that_intervals_are_wide() -> None:
    y, pred = _data(6, seed=4)
    assert "only 6 test examples; the intervals are wide" in regression_metrics(y, pred, n_boot=50)["warnings"]
    y, pred = _data(10, seed=4)
    assert regression_metrics(y, pred, n_boot=50)["warnings"] == []
    one = regression_metrics([3.0], [2.0], n_boot=20)
    assert one["mae"] == 1.0 and one["r2"] is None and "only 1 test example; the intervals are wide" in one["warnings"]
    json.dumps(one, allow_nan=False)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([1.0, 2.0], [1.0], "2 true values but 1 predictions"),
        ([], [], "no examples"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
        ([1.0, np.nan], [1.0, 2.0], "y_true holds 1 non-finite"),
        ([1.0, 2.0], [np.inf, 2.0], "y_pred holds 1 non-finite"),
    ],
)
def test_bad_input_is_a_headstart_error(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(HeadstartError, match=match):
        regression_metrics(np.array(y_true), np.array(y_pred))


def test_negative_n_boot_is_a_headstart_error() -> None:
    with pytest.raises(HeadstartError, match="n_boot=-1"):
        regression_metrics(np.arange(5.0), np.arange(5.0), n_boot=-1)


@pytest.mark.parametrize(("n", "bins"), [(1, 4), (9, 4), (200, 4), (57, 5), (30, 1), (5, 10)])
def test_error_by_range_covers_every_row_once(n: int, bins: int) -> None:
    y, pred = _data(n, seed=n)  # rounded values: ties between ranges
    ranges = error_by_range(y, pred, bins=bins)
    assert sum(r["n"] for r in ranges) == n
    assert 1 <= len(ranges) <= bins and all(r["n"] > 0 for r in ranges)
    assert ranges[0]["low"] == y.min() and ranges[-1]["high"] == y.max()
    assert all(a["high"] == b["low"] for a, b in zip(ranges, ranges[1:], strict=False))
    for i, r in enumerate(ranges):
        last = i == len(ranges) - 1
        rows = (y >= r["low"]) & ((y <= r["high"]) if last else (y < r["high"]))
        assert rows.sum() == r["n"]
        assert r["mae"] == pytest.approx(mean_absolute_error(y[rows], pred[rows]))


def test_error_by_range_splits_evenly_and_merges_ties() -> None:
    y = np.arange(100.0)
    assert [r["n"] for r in error_by_range(y, y, bins=4)] == [25, 25, 25, 25]
    assert error_by_range(np.full(8, 1.0), np.zeros(8)) == [{"low": 1.0, "high": 1.0, "n": 8, "mae": 1.0}]
    with pytest.raises(HeadstartError, match="bins=0"):
        error_by_range(y, y, bins=0)


def test_docstring_examples() -> None:
    assert doctest.testmod(regression).failed == 0

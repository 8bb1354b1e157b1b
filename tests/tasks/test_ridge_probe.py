import doctest

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import headstart.tasks.ridge_probe as ridge_probe
from headstart.errors import HeadstartError
from headstart.tasks.ridge_probe import RIDGE_ALPHAS, fit_ridge, ridge_path


def _features(n: int, d: int, seed: int, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Backbone-like features (a few latent factors mixed into ``d`` correlated columns with offsets and
    scales, float32) and a standardized target driven by the same factors."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 6))
    x = latent @ rng.normal(size=(6, d)) + 0.5 * rng.normal(size=(n, d))
    x = (x * rng.uniform(0.1, 5.0, d) + rng.uniform(-3.0, 10.0, d)).astype(np.float32)
    y = latent @ rng.normal(size=6) + noise * rng.normal(size=n)
    return x, (y - y.mean()) / y.std()


def _scale(x_train: np.ndarray) -> float:
    """The probe's one common feature scale: the root mean variance over dimensions (+1e-6)."""
    return float(np.sqrt(x_train.astype(np.float64).var(0).mean())) + 1e-6


def _center_scale(x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    xt = x_train.astype(np.float64)
    return (x.astype(np.float64) - xt.mean(0)) / _scale(x_train)


@pytest.mark.parametrize(("n", "d", "alpha"), [(80, 300, 3.0), (400, 50, 10.0), (300, 300, 0.5)])
def test_matches_scikit_learn_ridge_on_centered_scaled_features(n: int, d: int, alpha: float) -> None:
    x, y = _features(n + 100, d, seed=d)
    fit = fit_ridge(x[:n], y[:n], x[n:], y[n:], [alpha])
    ref = Ridge(alpha=alpha).fit(_center_scale(x[:n], x[:n]), y[:n])
    assert fit.C == alpha
    np.testing.assert_allclose(fit.weight[0] * _scale(x[:n]), ref.coef_, atol=1e-6)
    ours = x[n:] @ fit.weight.T + fit.bias  # raw features in
    np.testing.assert_allclose(ours[:, 0], ref.predict(_center_scale(x[:n], x[n:])), atol=1e-6)
    mse = np.mean((y[n:] - ref.predict(_center_scale(x[:n], x[n:]))) ** 2)
    assert fit.history[0]["val_loss"] == pytest.approx(mse, rel=1e-9)


@pytest.mark.parametrize(("n", "d"), [(60, 200), (500, 30)])
def test_ridge_path_matches_a_direct_solve_per_alpha(n: int, d: int) -> None:
    rng = np.random.default_rng(n)
    z, y = rng.normal(size=(n, d)), rng.normal(size=n)
    z, y = z - z.mean(0), y - y.mean()
    alphas = np.array([0.1, 1.0, 100.0])
    w = ridge_path(z, y, alphas)
    assert w.shape == (d, 3)
    for i, a in enumerate(alphas):
        np.testing.assert_allclose(w[:, i], np.linalg.solve(z.T @ z + a * np.eye(d), z.T @ y), atol=1e-8)


def test_chooses_the_validation_best_alpha_with_a_history_per_alpha() -> None:
    x, y = _features(360, 120, seed=1, noise=1.0)
    alphas = [1000.0, 0.1, 10.0, 1.0, 100.0]
    fit = fit_ridge(x[:200], y[:200], x[200:300], y[200:300], alphas)
    assert [h["C"] for h in fit.history] == sorted(alphas)
    assert set(fit.history[0]) == {"C", "train_loss", "val_loss", "val_r2", "val_mae"}
    val = {h["C"]: h["val_loss"] for h in fit.history}
    assert val[fit.C] == min(val.values())
    for alpha in alphas:  # each record is that alpha's own fit
        p = Ridge(alpha=alpha).fit(_center_scale(x[:200], x[:200]), y[:200]).predict(_center_scale(x[:200], x[200:300]))
        assert val[alpha] == pytest.approx(np.mean((y[200:300] - p) ** 2), rel=1e-8)
    # less regularization always fits the training set at least as well
    train = [h["train_loss"] for h in fit.history]
    assert all(a <= b + 1e-12 for a, b in zip(train, train[1:], strict=False))


def test_ties_go_to_the_larger_alpha() -> None:
    x, y = _features(120, 10, seed=2)
    fit = fit_ridge(x[:100], y[:100], x[100:], y[100:], [3.0, 3.0])
    assert fit.C == 3.0 and len(fit.history) == 2
    x_const = np.ones((120, 4), dtype=np.float32)  # no information: every alpha predicts the training mean
    fit = fit_ridge(x_const[:100], y[:100], x_const[100:], y[100:], [0.1, 1.0, 10.0])
    assert fit.C == 10.0


def test_folded_weights_predict_on_raw_features_what_the_scaled_probe_does() -> None:
    x, y = _features(500, 1280, seed=3)
    fit = fit_ridge(x[:300], y[:300], x[300:400], y[300:400], RIDGE_ALPHAS)
    assert fit.weight.shape == (1, 1280) and fit.bias.shape == (1,)
    assert fit.weight.dtype == np.float64 and fit.bias.dtype == np.float64
    ref = Ridge(alpha=fit.C).fit(_center_scale(x[:300], x[:300]), y[:300])
    raw = (x[400:] @ fit.weight.T + fit.bias)[:, 0]
    np.testing.assert_allclose(raw, ref.predict(_center_scale(x[:300], x[400:])), atol=1e-6)


def test_informative_features_give_a_high_validation_r2() -> None:
    x, y = _features(700, 256, seed=4, noise=0.1)
    fit = fit_ridge(x[:400], y[:400], x[400:], y[400:], RIDGE_ALPHAS)
    best = next(h for h in fit.history if h["C"] == fit.C)
    assert best["val_r2"] > 0.9 and best["val_mae"] < 0.3


def test_default_grid() -> None:
    assert len(RIDGE_ALPHAS) == 15 and RIDGE_ALPHAS[0] == pytest.approx(1e-2) and RIDGE_ALPHAS[-1] == pytest.approx(1e5)
    assert all(b / a == pytest.approx(10**0.5) for a, b in zip(RIDGE_ALPHAS, RIDGE_ALPHAS[1:], strict=False))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"alphas": [0.0, 1.0]}, "positive numbers"),
        ({"alphas": []}, "non-empty"),
        ({"x_val": np.zeros((5, 7))}, "7 columns but training features 6"),
        ({"y_train": np.zeros(9)}, "train features have shape"),
        ({"x_val": np.zeros((0, 6)), "y_val": np.zeros(0)}, "val features have shape"),
        ({"y_train": np.r_[np.nan, np.zeros(9)]}, "NaN"),
    ],
)
def test_bad_input_is_a_headstart_error(change: dict, match: str) -> None:
    args = {"x_train": np.ones((10, 6)), "y_train": np.zeros(10), "x_val": np.ones((5, 6)), "y_val": np.zeros(5)}
    args["alphas"] = [1.0]
    args.update(change)
    with pytest.raises(HeadstartError, match=match):
        fit_ridge(**args)


def test_docstring_examples() -> None:
    assert doctest.testmod(ridge_probe).failed == 0

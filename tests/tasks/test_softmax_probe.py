import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from headstart.tasks.softmax_probe import fit_probe, softmax_regression


def _blobs(n: int, d: int, k: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * sep
    y = rng.randint(0, k, n)
    return (centers[y] + rng.randn(n, d)).astype(np.float32) * 3 + 5, y


def test_softmax_regression_matches_scikit_learn() -> None:
    x, y = _blobs(300, 20, 3, 0.7, 0)
    z = (x - x.mean(0)) / x.std(0)
    w, b = softmax_regression(z, y, 3, c=0.1)
    ours = torch.softmax(torch.from_numpy(z) @ w.T + b, 1).numpy()
    ref = LogisticRegression(C=0.1, max_iter=5000, tol=1e-8).fit(z, y).predict_proba(z)
    assert np.abs(ours - ref).max() < 2e-3


def test_probe_picks_c_on_validation_and_folds_standardization() -> None:
    x, y = _blobs(600, 30, 4, 0.5, 1)
    fit = fit_probe(x[:400], y[:400], x[400:500], y[400:500], 4, [0.001, 0.01, 0.1, 1.0])
    accs = {h["C"]: h["val_accuracy"] for h in fit.history}
    assert fit.C in accs and accs[fit.C] == max(accs.values())
    # raw features in: the common feature scale is folded into the weights
    ours = (x[500:] @ fit.weight.T + fit.bias).argmax(1)
    mu, sd = x[:400].mean(0), np.sqrt(x[:400].var(0).mean())
    ref = LogisticRegression(C=fit.C, max_iter=5000).fit((x[:400] - mu) / sd, y[:400]).predict((x[500:] - mu) / sd)
    assert (ours == ref).mean() >= 0.97
    assert (ours == y[500:]).mean() > 0.7


def test_binary_probe_gives_two_symmetric_logits() -> None:
    x, y = _blobs(200, 10, 2, 1.0, 2)
    fit = fit_probe(x[:150], y[:150], x[150:], y[150:], 2, [0.1])
    assert fit.weight.shape == (2, 10)
    np.testing.assert_allclose(fit.weight[0], -fit.weight[1], atol=1e-6)


def test_probe_beats_chance_by_far_on_separable_data() -> None:
    x, y = _blobs(300, 8, 3, 2.0, 3)
    fit = fit_probe(x[:200], y[:200], x[200:], y[200:], 3, [1.0])
    assert fit.history[0]["val_accuracy"] > 0.95
    assert fit.history[0]["train_loss"] < 0.2


@pytest.mark.parametrize("patience", [1, 2])
def test_regularization_path_stops_after_patience(patience: int) -> None:
    x, y = _blobs(200, 50, 2, 0.2, 4)
    fit = fit_probe(x[:100], y[:100], x[100:], y[100:], 2, [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100], patience=patience)
    best_i = [h["C"] for h in fit.history].index(fit.C)
    assert len(fit.history) <= best_i + 1 + patience


def test_near_constant_features_get_no_outsized_weights() -> None:
    """A dimension that barely varies in training (a ReLU channel that rarely fires) must not get a weight in
    the thousands once the scaling is folded back: fine-tuning from the probe's head would swing on it."""
    x, y = _blobs(400, 20, 3, 0.7, 5)
    x[:, 0] = 1e-5 * np.random.RandomState(0).randn(400)  # near-constant, and uninformative
    fit = fit_probe(x[:300], y[:300], x[300:], y[300:], 3, [0.01, 0.1, 1.0])
    assert np.abs(fit.weight[:, 0]).max() < 10 * np.abs(fit.weight[:, 1:]).max()
    assert fit.history[-1]["val_accuracy"] > 0.7

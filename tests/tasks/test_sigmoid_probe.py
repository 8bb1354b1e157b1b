import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from headstart.errors import HeadstartError
from headstart.tasks.sigmoid_probe import fit_sigmoid_probe, sigmoid_regression


def _multilabel(n: int, d: int, n_labels: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw (shifted, scaled) features and multi-hot labels, each label a noisy linear function of the features."""
    rng = np.random.RandomState(seed)
    z = rng.randn(n, d)
    directions = rng.randn(n_labels, d)
    offsets = rng.uniform(-1.5, 0.5, n_labels)  # some labels rare, some common
    Y = (z @ directions.T * sep / np.sqrt(d) + offsets + rng.randn(n, n_labels) > 0).astype(np.int64)
    return (z * 3 + 5).astype(np.float32), Y


def test_matches_scikit_learn_per_label() -> None:
    x, Y = _multilabel(300, 15, 4, 1.0, 0)
    z = (x - x.mean(0)) / x.std(0)
    w, b = sigmoid_regression(z, Y, c=0.1)
    ours = expit((torch.from_numpy(z) @ w.T + b).double().numpy())  # (n, L)
    for j in range(Y.shape[1]):
        ref = LogisticRegression(C=0.1, max_iter=5000, tol=1e-8).fit(z, Y[:, j]).predict_proba(z)[:, 1]
        assert np.abs(ours[:, j] - ref).max() < 1e-3


def test_pos_weight_matches_weighted_scikit_learn() -> None:
    x, Y = _multilabel(300, 10, 2, 1.0, 1)
    z = (x - x.mean(0)) / x.std(0)
    pw = np.array([3.0, 0.5])
    w, b = sigmoid_regression(z, Y, c=0.5, pos_weight=pw)
    ours = expit((torch.from_numpy(z) @ w.T + b).double().numpy())
    for j in range(2):
        lr = LogisticRegression(C=0.5, max_iter=5000, tol=1e-8, class_weight={0: 1.0, 1: pw[j]})
        ref = lr.fit(z, Y[:, j]).predict_proba(z)[:, 1]
        assert np.abs(ours[:, j] - ref).max() < 1e-3


def test_chooses_validation_best_c_and_folds_standardization() -> None:
    x, Y = _multilabel(700, 40, 5, 1.0, 2)
    fit = fit_sigmoid_probe(x[:400], Y[:400], x[400:550], Y[400:550], [0.001, 0.01, 0.1, 1.0], patience=4)
    assert fit.weight.shape == (5, 40) and fit.bias.shape == (5,)
    maps = {h["C"]: h["val_mean_average_precision"] for h in fit.history}
    assert maps[fit.C] == max(maps.values())
    assert set(fit.history[0]) == {"C", "train_loss", "val_loss", "val_mean_average_precision", "val_micro_f1"}
    # raw features in: the common feature scale is folded into the weights
    mu, sd = x[:400].mean(0), np.sqrt(x[:400].var(0).mean())
    zt = (x[550:] - mu) / sd
    ours = expit(x[550:].astype(np.float64) @ fit.weight.T + fit.bias)
    for j in range(5):
        ref = LogisticRegression(C=fit.C, max_iter=5000, tol=1e-8).fit((x[:400] - mu) / sd, Y[:400, j])
        assert np.abs(ours[:, j] - ref.predict_proba(zt)[:, 1]).max() < 2e-3


def test_learns_separable_labels() -> None:
    x, Y = _multilabel(600, 10, 3, 12.0, 3)
    fit = fit_sigmoid_probe(x[:400], Y[:400], x[400:], Y[400:], [1.0])
    assert fit.history[0]["val_mean_average_precision"] > 0.95
    assert fit.history[0]["val_micro_f1"] > 0.85
    p = expit(x[400:].astype(np.float64) @ fit.weight.T + fit.bias)
    aps = [average_precision_score(Y[400:, j], p[:, j]) for j in range(3)]
    assert np.mean(aps) == pytest.approx(fit.history[0]["val_mean_average_precision"], abs=1e-4)


def test_history_losses_and_patience() -> None:
    x, Y = _multilabel(200, 60, 3, 0.3, 4)
    cs = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100]
    fit = fit_sigmoid_probe(x[:100], Y[:100], x[100:], Y[100:], cs, patience=1)
    best_i = [h["C"] for h in fit.history].index(fit.C)
    assert len(fit.history) <= best_i + 2
    train = [h["train_loss"] for h in fit.history]
    assert all(a >= b - 1e-6 for a, b in zip(train, train[1:], strict=False))  # weaker penalty fits training better


def test_input_errors() -> None:
    x, Y = _multilabel(50, 5, 2, 1.0, 5)
    with pytest.raises(HeadstartError, match="positive inverse regularization"):
        fit_sigmoid_probe(x, Y, x, Y, [0.0])
    with pytest.raises(HeadstartError, match="one positive weight per label"):
        fit_sigmoid_probe(x, Y, x, Y, [1.0], pos_weight=np.ones(3))
    with pytest.raises(HeadstartError, match="0/1"):
        fit_sigmoid_probe(x, Y * 2, x, Y, [1.0])
    with pytest.raises(HeadstartError, match="same n"):
        fit_sigmoid_probe(x, Y[:10], x, Y, [1.0])

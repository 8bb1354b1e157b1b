import doctest

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

import headstart.metrics.bootstrap as bootstrap
from headstart.errors import HeadstartError
from headstart.metrics import bootstrap_ci, percentile_interval


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    proba = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2)  # rounding makes ties
    return y, proba.argmax(1), proba


def _reference(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_boot: int, seed: int) -> dict:
    """The slow, obvious bootstrap with scikit-learn on the same resampled indices."""
    k = proba.shape[1]
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
    acc, f1, auc = [], [], []
    for rows in idx:
        yt, yp, pb = y[rows], pred[rows], proba[rows]
        acc.append(np.mean(yt == yp))
        f1.append(f1_score(yt, yp, labels=np.arange(k), average="macro", zero_division=0))
        if k == 2 and len(np.unique(yt)) == 2:
            auc.append(roc_auc_score(yt, pb[:, 1]))
        elif k > 2 and len(np.unique(yt)) == k:
            auc.append(roc_auc_score(yt, pb / pb.sum(1, keepdims=True), multi_class="ovr", labels=np.arange(k)))
    return {
        "accuracy": percentile_interval(np.array(acc)),
        "macro_f1": percentile_interval(np.array(f1)),
        "roc_auc": percentile_interval(np.array(auc)),
    }


@pytest.mark.parametrize(("n", "k"), [(40, 2), (60, 4), (25, 3)])
def test_matches_a_scikit_learn_loop_on_the_same_resamples(n: int, k: int) -> None:
    y, pred, proba = _data(n, k, seed=n)
    got = bootstrap_ci(y, pred, proba, n_boot=60, seed=7)
    want = _reference(y, pred, proba, n_boot=60, seed=7)
    for key in ("accuracy", "macro_f1", "roc_auc"):
        assert got[key] == pytest.approx(want[key]), key


def test_chunked_resampling_draws_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    y, pred, proba = _data(50, 3, seed=1)
    whole = bootstrap_ci(y, pred, proba, n_boot=40, seed=3)
    monkeypatch.setattr(bootstrap, "_CELLS_PER_CHUNK", 50 * 7)  # 7 resamples per chunk
    assert bootstrap_ci(y, pred, proba, n_boot=40, seed=3) == whole


def test_seeded() -> None:
    y, pred, proba = _data(80, 2, seed=2)
    assert bootstrap_ci(y, pred, proba, 100, seed=1) == bootstrap_ci(y, pred, proba, 100, seed=1)
    assert bootstrap_ci(y, pred, proba, 100, seed=1) != bootstrap_ci(y, pred, proba, 100, seed=2)


def test_accuracy_interval_covers_the_true_rate() -> None:
    # 300 test sets of n=200 whose predictions are right with probability 0.8: the 95% interval
    # should contain 0.8 about 95% of the time (percentile intervals run a little short at this n).
    rng = np.random.default_rng(0)
    covered = 0
    for rep in range(300):
        y = rng.integers(0, 2, 200)
        pred = np.where(rng.random(200) < 0.8, y, 1 - y)
        lo, hi = bootstrap_ci(y, pred, np.eye(2)[pred], n_boot=300, seed=rep)["accuracy"]
        covered += lo <= 0.8 <= hi
    assert 0.90 <= covered / 300 <= 0.99


def test_interval_brackets_the_point_estimate_and_shrinks_with_n() -> None:
    widths = []
    for n in (50, 800):
        y, pred, proba = _data(n, 3, seed=n)
        ci = bootstrap_ci(y, pred, proba, n_boot=400, seed=0)
        lo, hi = ci["accuracy"]
        assert lo <= np.mean(y == pred) <= hi
        lo_f, hi_f = ci["macro_f1"]
        assert lo_f <= f1_score(y, pred, average="macro") <= hi_f
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_undefined_auc_resamples_are_skipped_or_none() -> None:
    y = np.array([1] * 20)
    proba = np.tile([0.3, 0.7], (20, 1))
    ci = bootstrap_ci(y, np.ones(20, dtype=int), proba, n_boot=50)
    assert ci["roc_auc"] is None and ci["accuracy"] == [1.0, 1.0]
    # a single positive among 30: resamples without it are skipped, the rest still give an interval
    y = np.array([0] * 29 + [1])
    p1 = np.linspace(0.0, 0.9, 30)
    ci = bootstrap_ci(y, (p1 > 0.5).astype(int), np.stack([1 - p1, p1], 1), n_boot=200)
    assert ci["roc_auc"] == [1.0, 1.0]
    # multiclass: a class absent from y_true leaves every resample undefined
    ci = bootstrap_ci(np.array([0, 1, 0, 1]), np.array([0, 1, 2, 1]), np.full((4, 3), 1 / 3), n_boot=20)
    assert ci["roc_auc"] is None


def test_no_resamples() -> None:
    y, pred, proba = _data(10, 2, seed=0)
    assert bootstrap_ci(y, pred, proba, n_boot=0) == {"accuracy": None, "macro_f1": None, "roc_auc": None}
    with pytest.raises(HeadstartError, match="n_boot=-1"):
        bootstrap_ci(y, pred, proba, n_boot=-1)


def test_docstring_examples() -> None:
    assert doctest.testmod(bootstrap).failed == 0

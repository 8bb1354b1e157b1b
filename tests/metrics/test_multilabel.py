import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from headstart.errors import HeadstartError
from headstart.metrics.multilabel import (
    _boot_ap,
    _boot_macro_f1,
    decide_labels,
    mean_average_precision,
    multilabel_metrics,
    tune_label_thresholds,
)

LABELS = ["crack", "dirt", "burn", "scratch", "hotspot", "snail"]


def _data(n: int, seed: int, prevalence: tuple[float, ...] = (0.5, 0.3, 0.2, 0.1, 0.05, 0.4)) -> tuple:
    """Multi-hot targets and noisy scores that carry signal, rounded to 2 decimals so that ties occur."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, len(prevalence))) < np.array(prevalence)).astype(np.int64)
    P = np.clip(0.35 * Y + rng.random(Y.shape) * 0.65, 0, 1).round(2)
    return Y, P


def test_point_values_equal_scikit_learn() -> None:
    Y, P = _data(300, 0)
    t = np.array([0.5, 0.4, 0.6, 0.55, 0.3, 0.5])
    m = multilabel_metrics(Y, P, LABELS, thresholds=t, n_boot=0)
    pred = (P >= t).astype(int)
    assert m["micro_f1"] == pytest.approx(f1_score(Y, pred, average="micro", zero_division=0), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(f1_score(Y, pred, average="macro", zero_division=0), abs=1e-12)
    aps = [average_precision_score(Y[:, j], P[:, j]) for j in range(Y.shape[1])]
    assert m["mean_average_precision"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert m["micro_average_precision"] == pytest.approx(average_precision_score(Y, P, average="micro"), abs=1e-12)
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(Y, pred), abs=1e-12)
    assert m["hamming_loss"] == pytest.approx(hamming_loss(Y, pred), abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(Y, pred, zero_division=0)
    for j, label in enumerate(LABELS):
        row = m["per_label"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[j], r[j], f[j], s[j]))
        assert row["average_precision"] == pytest.approx(aps[j])
        assert row["roc_auc"] == pytest.approx(roc_auc_score(Y[:, j], P[:, j]))
        assert row["threshold"] == t[j]
    assert set(m) == {
        "micro_f1",
        "macro_f1",
        "mean_average_precision",
        "micro_average_precision",
        "subset_accuracy",
        "hamming_loss",
        "per_label",
        "labels",
        "n",
        "ci95",
        "warnings",
    }
    assert m["labels"] == LABELS and m["n"] == 300


def test_single_label_column_scores_the_positive_class() -> None:
    Y, P = _data(100, 1)
    Y, P = Y[:, :1], P[:, :1]
    m = multilabel_metrics(Y, P, ["crack"], n_boot=0)
    pred = (P[:, 0] >= 0.5).astype(int)
    assert m["macro_f1"] == pytest.approx(f1_score(Y[:, 0], pred))
    assert m["micro_f1"] == pytest.approx(f1_score(Y[:, 0], pred))
    assert m["hamming_loss"] == pytest.approx(1 - accuracy_score(Y[:, 0], pred))


def test_undefined_values_are_none_not_nan() -> None:
    Y, P = _data(80, 2)
    Y[:, 2] = 0  # 'burn' has no positive: AP and AUC undefined
    Y[:, 3] = 1  # 'scratch' has no negative: AUC undefined
    m = multilabel_metrics(Y, P, LABELS, n_boot=50)
    assert m["per_label"]["burn"]["average_precision"] is None
    assert m["per_label"]["burn"]["roc_auc"] is None
    assert m["per_label"]["scratch"]["roc_auc"] is None
    defined = [average_precision_score(Y[:, j], P[:, j]) for j in range(6) if j != 2]
    assert m["mean_average_precision"] == pytest.approx(np.mean(defined))
    json.dumps(m, allow_nan=False)  # raises on NaN or infinity
    none = multilabel_metrics(np.zeros((5, 2), int), np.full((5, 2), 0.2), ["a", "b"], n_boot=20)
    assert none["mean_average_precision"] is None and none["micro_average_precision"] is None
    assert none["ci95"]["mean_average_precision"] is None
    json.dumps(none, allow_nan=False)


def test_vectorized_resample_values_equal_scikit_learn_on_that_resample() -> None:
    Y, P = _data(120, 3)
    idx = np.random.default_rng(7).integers(0, 120, size=(4, 120))
    W = np.stack([np.bincount(row, minlength=120) for row in idx]).astype(float)  # (B, n) draw counts
    pred = (P >= 0.5).astype(int)
    f1 = _boot_macro_f1(Y.astype(float), pred.astype(float), W)
    for b, row in enumerate(idx):
        assert f1[b] == pytest.approx(f1_score(Y[row], pred[row], average="macro", zero_division=0), abs=1e-12)
        for j in range(Y.shape[1]):
            ap = _boot_ap(Y[:, j].astype(float), P[:, j], W)[b]
            if Y[row, j].any():
                assert ap == pytest.approx(average_precision_score(Y[row, j], P[row, j]), abs=1e-12)
            else:
                assert np.isnan(ap)


def test_intervals_contain_the_point_and_repeat_per_seed() -> None:
    Y, P = _data(400, 4)
    m = multilabel_metrics(Y, P, LABELS, n_boot=300, seed=5)
    for key in ("macro_f1", "mean_average_precision"):
        lo, hi = m["ci95"][key]
        assert lo <= m[key] <= hi and hi - lo < 0.3
    assert multilabel_metrics(Y, P, LABELS, n_boot=300, seed=5)["ci95"] == m["ci95"]
    assert multilabel_metrics(Y, P, LABELS, n_boot=0)["ci95"] == {"macro_f1": None, "mean_average_precision": None}


def test_warnings_name_thin_and_never_predicted_labels() -> None:
    Y, P = _data(200, 5)
    Y[:, 0] = 0
    Y[:3, 0] = 1  # 'crack': 3 positives
    P[:, 1] = 0.1  # 'dirt' never reaches 0.5
    m = multilabel_metrics(Y, P, LABELS, n_boot=0)
    assert "label 'crack' has only 3 positive test examples; its scores are unreliable" in m["warnings"]
    assert "label 'dirt' is never predicted (recall 0)" in m["warnings"]
    assert not any("'snail'" in w for w in m["warnings"])


def test_tuned_thresholds_beat_one_half_on_shifted_scores() -> None:
    Y, P = _data(2000, 6)
    shifted = P * 0.45  # well ranked but every score below 0.5: nothing is predicted at the default
    Yv, Yt, Pv, Pt = Y[:1000], Y[1000:], shifted[:1000], shifted[1000:]
    t = tune_label_thresholds(Yv, Pv)
    assert t.shape == (6,) and (t < 0.5).all()
    default = multilabel_metrics(Yt, Pt, LABELS, n_boot=0)["macro_f1"]
    tuned = multilabel_metrics(Yt, Pt, LABELS, thresholds=t, n_boot=0)["macro_f1"]
    assert default == 0.0 and tuned > 0.5


def test_f1_threshold_is_the_best_cut_between_scores() -> None:
    Y, P = _data(150, 7)
    t = tune_label_thresholds(Y, P)
    for j in range(Y.shape[1]):
        s = np.unique(P[:, j])
        candidates = np.r_[(s[1:] + s[:-1]) / 2, s[0]]
        best = max(f1_score(Y[:, j], P[:, j] >= c, zero_division=0) for c in candidates)
        assert f1_score(Y[:, j], P[:, j] >= t[j]) == pytest.approx(best)
        assert t[j] in candidates


def test_recall_objective_and_one_sided_labels() -> None:
    Y, P = _data(300, 8)
    Y[:, 4] = 0  # no positive in validation: keeps 0.5
    t = tune_label_thresholds(Y, P, "recall:0.9")
    assert t[4] == 0.5
    pred = decide_labels(P, t)
    for j in (0, 1, 2, 3, 5):
        recall = pred[Y[:, j] == 1, j].mean()
        assert recall >= 0.9
        lowest_kept = P[:, j][P[:, j] >= t[j]].min()  # the next cut up drops this score and misses the target
        assert (P[Y[:, j] == 1, j] > lowest_kept).mean() < 0.9
    with pytest.raises(HeadstartError, match="unknown threshold objective"):
        tune_label_thresholds(Y, P, "precision:0.9")


def test_decide_labels_and_input_errors() -> None:
    P = np.array([[0.9, 0.2], [0.4, 0.6]])
    assert decide_labels(P).tolist() == [[1, 0], [0, 1]]
    assert decide_labels(P, 0.3).dtype == np.int64
    with pytest.raises(HeadstartError, match="one threshold per label"):
        decide_labels(P, np.array([0.5, 0.5, 0.5]))
    with pytest.raises(HeadstartError, match="not probabilities"):
        decide_labels(P, np.array([0.5, 1.5]))
    with pytest.raises(HeadstartError, match="0/1"):
        multilabel_metrics(np.array([[2, 0], [0, 1]]), P, ["a", "b"])
    with pytest.raises(HeadstartError, match="label columns"):
        multilabel_metrics(np.array([[1, 0], [0, 1]]), P, ["a", "b", "c"])
    assert mean_average_precision(np.array([[1, 0], [0, 0]]), np.array([[0.9, 0.3], [0.2, 0.1]])) == 1.0

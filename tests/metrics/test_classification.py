import doctest
import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
    top_k_accuracy_score,
)

import headstart.metrics.classification as classification
from headstart.errors import HeadstartError
from headstart.metrics import bootstrap_ci, compute_metrics, log_loss_from_proba


def _proba(pred: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    p = rng.rand(len(pred), k) * 0.5
    p[np.arange(len(pred)), pred] += 1.0
    return p / p.sum(1, keepdims=True)


def test_multiclass_matches_scikit_learn() -> None:
    rng = np.random.RandomState(0)
    y = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 0, 2, 2])
    proba = _proba(pred, 3, rng)
    m = compute_metrics(y, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["macro_recall"] == pytest.approx(recall_score(y, pred, average="macro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert m["per_class"]["c"]["support"] == 4
    assert m["per_class"]["a"]["recall"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m["labels"] == ["a", "b", "c"] and m["n"] == 10


def test_binary_hand_computed() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.8, 0.4])
    proba = np.stack([1 - p1, p1], 1)
    m = compute_metrics(y, proba, ["ok", "defect"])
    # predictions: 0 1 0 1 0 -> tp=1 fp=1 fn=1 for "defect"
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["defect"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 (pos, neg) pairs ordered correctly
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]


def test_roc_auc_undefined_is_null() -> None:
    y = np.array([1, 1, 1])
    proba = np.array([[0.2, 0.8]] * 3)
    assert compute_metrics(y, proba, ["a", "b"])["roc_auc"] is None


def test_class_never_predicted_has_zero_precision() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1]]
    m = compute_metrics(y, proba, ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_log_loss() -> None:
    y = np.array([0, 1])
    proba = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert log_loss_from_proba(y, proba) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)


# --- small-data honesty: new keys, threshold, warnings -------------------------------------------


def _old_compute_metrics(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict:
    """compute_metrics as it was before the new keys, kept verbatim to pin the old keys' values."""
    k = len(labels)
    y_pred = proba.argmax(1)
    idx = np.arange(k)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=idx, average="macro", zero_division=0)
    present = np.unique(y_true)
    if len(present) < 2 or (k > 2 and len(present) < k):
        auc = None
    elif k == 2:
        auc = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        pn = proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None)
        auc = float(roc_auc_score(y_true, pn, multi_class="ovr", average="macro", labels=idx))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
        "roc_auc": auc,
        "log_loss": log_loss_from_proba(y_true, proba),
        "per_class": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "labels": list(labels),
        "n": int(len(y_true)),
    }


@pytest.mark.parametrize(
    ("n", "k", "dtype"), [(30, 2, np.float64), (50, 4, np.float64), (40, 3, np.float32), (8, 5, np.float64)]
)
def test_old_keys_keep_their_old_values(n: int, k: int, dtype: type) -> None:
    rng = np.random.RandomState(n)
    y = rng.randint(0, k, n)
    proba = rng.dirichlet(np.ones(k), n).astype(dtype)
    labels = [f"c{i}" for i in range(k)]
    old = _old_compute_metrics(y, proba, labels)
    new = compute_metrics(y, proba, labels)
    assert {key: new[key] for key in old} == old
    assert "threshold" not in new


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # the reference call
def test_new_keys_match_scikit_learn_multiclass() -> None:
    rng = np.random.RandomState(3)
    y = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3] * 3)
    proba = rng.dirichlet(np.ones(5), len(y))  # class 4 never occurs in y
    m = compute_metrics(y, proba, list("abcde"), n_boot=50)
    pred = proba.argmax(1)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    per_class_ap = [average_precision_score(y == c, proba[:, c]) for c in range(4)]  # classes present only
    assert m["pr_auc"] == pytest.approx(np.mean(per_class_ap))
    assert set(m["top_k_accuracy"]) == {"2", "3", "4"}
    for top in (2, 3, 4):
        want = top_k_accuracy_score(y, proba, k=top, labels=np.arange(5))
        assert m["top_k_accuracy"][str(top)] == pytest.approx(want)
    assert m["roc_auc"] is None and m["ci95"]["roc_auc"] is None  # class "e" absent: OvR AUC undefined
    assert set(m["ci95"]) == {"accuracy", "macro_f1", "roc_auc"}
    json.dumps(m, allow_nan=False)


def test_binary_new_keys_and_top_k_shapes() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.8, 0.4])
    m = compute_metrics(y, np.stack([1 - p1, p1], 1), ["ok", "defect"], n_boot=100)
    # ranking by p1: .8(1) .6(0) .4(1) .2 .1 -> AP = (1/1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["top_k_accuracy"] == {}
    lo, hi = m["ci95"]["roc_auc"]
    assert 0.0 <= lo <= hi <= 1.0
    three = compute_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"], n_boot=0)
    assert three["top_k_accuracy"] == {"2": 1.0}


def test_one_class_present_gives_nulls() -> None:
    m = compute_metrics(np.array([1, 1, 1]), np.array([[0.2, 0.8]] * 3), ["a", "b"], n_boot=50)
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["ci95"]["roc_auc"] is None
    assert m["ci95"]["accuracy"] == [1.0, 1.0]


def test_threshold_drives_every_hard_prediction() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.8, 0.4])
    proba = np.stack([1 - p1, p1], 1)
    m = compute_metrics(y, proba, ["ok", "defect"], threshold=0.3, n_boot=200)
    # p1 >= 0.3 -> predictions 0 1 0 1 1: tp=2 fp=1 fn=0 for "defect"
    pred = np.array([0, 1, 0, 1, 1])
    assert m["threshold"] == 0.3
    assert m["confusion_matrix"] == [[2, 1], [0, 2]]
    assert m["accuracy"] == pytest.approx(4 / 5)
    assert m["per_class"]["defect"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["roc_auc"] == pytest.approx(5 / 6)  # probabilities, not the threshold
    assert m["ci95"] == bootstrap_ci(y, pred, proba, n_boot=200, seed=0)
    assert m["warnings"] == [
        "class 'ok' has only 3 test examples; its precision/recall are unreliable",
        "class 'defect' has only 2 test examples; its precision/recall are unreliable",
    ]


def test_threshold_errors() -> None:
    with pytest.raises(HeadstartError, match=r"threshold=0.5 applies to binary tasks only.*3 classes \(a, b, c\)"):
        compute_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"], threshold=0.5)
    with pytest.raises(HeadstartError, match=r"threshold=1.5 is not a probability"):
        compute_metrics(np.array([0, 1]), np.eye(2), ["a", "b"], threshold=1.5)


def test_warnings_name_thin_and_never_predicted_classes() -> None:
    y = np.array([0] * 20 + [1] * 4 + [2] * 15)
    pred = np.array([0] * 20 + [0] * 4 + [2] * 15)  # "b" (4 examples) is never predicted
    m = compute_metrics(y, np.eye(4)[pred], ["a", "b", "c", "d"], n_boot=0)
    assert m["warnings"] == [
        "class 'b' has only 4 test examples; its precision/recall are unreliable",
        "class 'b' is never predicted (recall 0)",
        "class 'd' has no test examples; its recall is undefined (reported as 0)",
    ]
    ok = compute_metrics(np.repeat([0, 1], 10), np.eye(2)[np.repeat([0, 1], 10)], ["x", "y"], n_boot=0)
    assert ok["warnings"] == []


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(HeadstartError, match="no examples"):
        compute_metrics(np.zeros(0, dtype=int), np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(HeadstartError, match=r"proba has shape \(2, 3\) but 2 labels of 2 classes"):
        compute_metrics(np.array([0, 1]), np.eye(3)[:2], ["a", "b"])
    with pytest.raises(HeadstartError, match="class index 2, outside 0..1"):
        compute_metrics(np.array([0, 2]), np.eye(2), ["a", "b"])


def test_2000_by_10_with_1000_resamples() -> None:
    # the size the bootstrap is tuned for (about 0.3-0.5 s on one core); asserts numbers only, no timing
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    logits = rng.normal(size=(2000, 10))
    logits[np.arange(2000), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = compute_metrics(y, proba, [str(i) for i in range(10)], n_boot=1000, seed=0)
    for key in ("accuracy", "macro_f1", "roc_auc"):
        lo, hi = m["ci95"][key]
        assert lo < m[key] < hi and hi - lo < 0.1, key
    assert m["top_k_accuracy"]["9"] == pytest.approx(top_k_accuracy_score(y, proba, k=9))
    assert m["warnings"] == []
    json.dumps(m, allow_nan=False)


def test_docstring_examples() -> None:
    assert doctest.testmod(classification).failed == 0

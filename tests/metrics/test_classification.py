import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from headstart.metrics import compute_metrics, log_loss_from_proba


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

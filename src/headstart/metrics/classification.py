"""Classification metrics over a whole evaluated set, computed with scikit-learn.

Small test sets make single numbers look surer than they are, so :func:`compute_metrics` also reports
bootstrap intervals, calibration, and plain-language warnings about thin or never-predicted classes.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.metrics.bootstrap import bootstrap_ci
from headstart.metrics.calibration import expected_calibration_error

__all__ = ["MIN_RELIABLE_SUPPORT", "class_warnings", "compute_metrics", "log_loss_from_proba", "predict_labels"]

MIN_RELIABLE_SUPPORT = 10  # fewer evaluated examples than this in a class triggers a warning


def log_loss_from_proba(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at 1e-12)."""
    if len(y_true) == 0:
        return float("nan")
    return float(-np.log(np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)).mean())


def _row_normalized(proba: np.ndarray) -> np.ndarray:
    """Rows rescaled to sum to 1 (one-vs-rest scores in scikit-learn expect that)."""
    return proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None)


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, k: int) -> float | None:
    """Binary AUC of the positive class, or one-vs-rest macro AUC; None when undefined."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if k == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    if len(present) < k:  # OvR needs every class among the true labels
        return None
    return float(roc_auc_score(y_true, _row_normalized(proba), multi_class="ovr", average="macro", labels=np.arange(k)))


def _pr_auc(y_true: np.ndarray, proba: np.ndarray, k: int) -> float | None:
    """Average precision of class 1 (binary) or macro one-vs-rest AP over the classes present; None below 2 classes."""
    from sklearn.metrics import average_precision_score

    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if k == 2:
        return float(average_precision_score(y_true == 1, proba[:, 1]))
    p = _row_normalized(proba)
    return float(np.mean([average_precision_score(y_true == c, p[:, c]) for c in present]))


def _top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, k: int) -> dict[str, float]:
    """``{"2": acc@2, ..., str(k-1): acc@(k-1)}``; empty for two classes or fewer."""
    from sklearn.metrics import top_k_accuracy_score

    labels = np.arange(k)
    return {str(top): float(top_k_accuracy_score(y_true, proba, k=top, labels=labels)) for top in range(2, k)}


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    from sklearn.metrics import balanced_accuracy_score

    with _warnings.catch_warnings():  # "y_pred contains classes not in y_true" is expected on small sets
        _warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def _check_inputs(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> None:
    """Raise a HeadstartError unless ``proba`` is ``(n, len(labels))``, n > 0, and ``y_true`` holds n class indices."""
    k = len(labels)
    if proba.ndim != 2 or proba.shape[1] != k or len(y_true) != len(proba):
        raise HeadstartError(
            f"proba has shape {proba.shape} but {len(y_true)} labels of {k} classes were given; "
            f"pass one row of {k} class probabilities per example"
        )
    if len(y_true) == 0:
        raise HeadstartError("there are no examples to compute metrics on; evaluate on a split that has some")
    if y_true.min() < 0 or y_true.max() >= k:
        bad = int(y_true.max()) if y_true.max() >= k else int(y_true.min())
        raise HeadstartError(f"y_true holds class index {bad}, outside 0..{k - 1} for labels {labels}")


def predict_labels(proba: np.ndarray, labels: list[str], threshold: float | None = None) -> np.ndarray:
    """Class indices: the argmax, or for a binary task ``proba[:, 1] >= threshold`` when a threshold is given.

    Example:
        >>> predict_labels(np.array([[0.7, 0.3], [0.4, 0.6]]), ["ok", "defect"], threshold=0.25).tolist()
        [1, 1]
    """
    if threshold is None:
        return proba.argmax(1)
    if len(labels) != 2:
        raise HeadstartError(
            f"threshold={threshold} applies to binary tasks only, but this task has {len(labels)} classes "
            f"({', '.join(labels)}); leave threshold unset to predict the most probable class"
        )
    if not 0.0 <= threshold <= 1.0:
        raise HeadstartError(f"threshold={threshold} is not a probability; use a value in [0, 1], e.g. 0.5")
    return (proba[:, 1] >= threshold).astype(np.int64)


def class_warnings(support: np.ndarray, n_predicted: np.ndarray, labels: list[str]) -> list[str]:
    """Plain-language warnings: classes with under :data:`MIN_RELIABLE_SUPPORT` examples, and present classes
    the model never predicts.

    Example:
        >>> for line in class_warnings(np.array([4, 30]), np.array([5, 0]), ["cat", "dog"]):
        ...     print(line)
        class 'cat' has only 4 test examples; its precision/recall are unreliable
        class 'dog' is never predicted (recall 0)
    """
    out: list[str] = []
    for label, count, predicted in zip(labels, support.tolist(), n_predicted.tolist(), strict=True):
        if count == 0:
            out.append(f"class {label!r} has no test examples; its recall is undefined (reported as 0)")
        elif count < MIN_RELIABLE_SUPPORT:
            out.append(f"class {label!r} has only {count} test examples; its precision/recall are unreliable")
        if predicted == 0 and count > 0:
            out.append(f"class {label!r} is never predicted (recall 0)")
    return out


def _hard_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Metrics of the hard predictions: accuracy, macro and per-class P/R/F1, confusion matrix, warnings."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    idx = np.arange(len(labels))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=idx, average="macro", zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=idx)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _balanced_accuracy(y_true, y_pred),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
        "per_class": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
        "warnings": class_warnings(cm.sum(1), cm.sum(0), labels),
    }


def compute_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: list[str],
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of one evaluated (non-empty) set as a JSON-ready dict; None where a value is undefined.

    Keys: ``accuracy``, ``balanced_accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
    ``roc_auc``, ``pr_auc``, ``log_loss``, ``ece``, ``reliability``, ``top_k_accuracy``, ``ci95``,
    ``per_class``, ``confusion_matrix``, ``warnings``, ``labels``, ``n`` and, when given, ``threshold``.

    ``confusion_matrix`` rows are true labels and columns predictions, both in the order of ``labels``.
    Hard predictions are the argmax, or ``proba[:, 1] >= threshold`` on a binary task when ``threshold``
    is set (a threshold on a multiclass task is an error). ``roc_auc``, ``pr_auc``, ``ece`` and
    ``top_k_accuracy`` use the probabilities and ignore the threshold. ``ci95`` holds 95% percentile
    bootstrap intervals ``[lo, hi]`` of accuracy, macro-F1 and ROC-AUC (``n_boot`` resamples, seeded by
    ``seed``; see :func:`headstart.metrics.bootstrap_ci`).

    Example:
        >>> proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
        >>> m = compute_metrics(np.array([0, 1, 1, 1]), proba, ["ok", "defect"], threshold=0.35, n_boot=0)
        >>> m["accuracy"], m["threshold"], m["roc_auc"]
        (1.0, 0.35, 1.0)
    """
    k = len(labels)
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba)  # keep the caller's dtype so the long-standing keys keep their exact values
    _check_inputs(y_true, proba, labels)
    y_pred = predict_labels(proba, labels, threshold)
    ece, reliability = expected_calibration_error(y_true, proba)
    metrics = _hard_metrics(y_true, y_pred, labels)
    metrics.update(
        roc_auc=_roc_auc(y_true, proba, k),
        pr_auc=_pr_auc(y_true, proba, k),
        log_loss=log_loss_from_proba(y_true, proba),
        ece=ece,
        reliability=reliability,
        top_k_accuracy=_top_k_accuracy(y_true, proba, k),
        ci95=bootstrap_ci(y_true, y_pred, proba, n_boot=n_boot, seed=seed),
        labels=list(labels),
        n=int(len(y_true)),
    )
    if threshold is not None:
        metrics["threshold"] = float(threshold)
    return metrics

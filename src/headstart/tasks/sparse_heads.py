"""Linear heads on sparse TF-IDF features (the text ``scratch`` baseline), one per task, fitted with
scikit-learn on the sparse matrix (no densifying, no standardization: TF-IDF rows are already L2-normalized).
Each returns a :class:`~headstart.tasks.base.ProbeResult` in the TF-IDF feature space, which
:class:`~headstart.backbones.tfidf.TfidfClassifier` loads as its head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from headstart.tasks.base import ProbeResult

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

__all__ = ["TFIDF_CS", "logistic_head", "ridge_head", "one_vs_rest_head"]

TFIDF_CS = (0.3, 1.0, 3.0, 10.0, 30.0)  # inverse regularization strengths tried on validation


def _full_coef(clf: LogisticRegression, num_classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, V) weights and (K,) biases; binary problems become two symmetric rows (same softmax)."""
    coef, intercept = clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((num_classes, dim))
    bias = np.full(num_classes, -1e4)  # classes absent from training are never predicted
    weight[clf.classes_] = coef
    bias[clf.classes_] = intercept
    return weight, bias


def logistic_head(
    x_train: Any, y_train: np.ndarray, x_val: Any, y_val: np.ndarray, num_classes: int, cs: Sequence[float] = TFIDF_CS
) -> ProbeResult:
    """Multinomial logistic regression; C with the best validation accuracy (the first of equals)."""
    from sklearn.linear_model import LogisticRegression

    best: tuple[float, float, LogisticRegression] | None = None
    history = []
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        acc = float((clf.predict(x_val) == y_val).mean())
        history.append({"C": float(c), "val_accuracy": acc})
        if best is None or acc > best[0]:
            best = (acc, float(c), clf)
    assert best is not None
    weight, bias = _full_coef(best[2], num_classes, x_train.shape[1])
    return ProbeResult(weight, bias, best[1], history)


def ridge_head(
    x_train: Any, z_train: np.ndarray, x_val: Any, z_val: np.ndarray, cs: Sequence[float] = TFIDF_CS
) -> ProbeResult:
    """Ridge regression of a standardized target (alpha = 1 / C); C with the lowest validation MSE."""
    from sklearn.linear_model import Ridge

    best: tuple[float, float, Ridge] | None = None
    history = []
    for c in cs:
        model = Ridge(alpha=1.0 / c).fit(x_train, z_train)
        mse = float(np.mean((model.predict(x_val) - z_val) ** 2))
        history.append({"C": float(c), "val_loss": mse})
        if best is None or mse < best[0]:
            best = (mse, float(c), model)
    assert best is not None
    model = best[2]
    return ProbeResult(
        np.asarray(model.coef_, dtype=np.float64)[None], np.array([float(model.intercept_)]), best[1], history
    )


def _label_model(x_train: Any, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """One label's logistic weights (V,) and bias; a label constant in training gets its log-odds as bias."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        p = np.clip(y.mean(), 1e-4, 1 - 1e-4)
        return np.zeros(x_train.shape[1]), float(np.log(p / (1 - p)))
    clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def one_vs_rest_head(
    x_train: Any, y_train: np.ndarray, x_val: Any, y_val: np.ndarray, cs: Sequence[float] = TFIDF_CS
) -> ProbeResult:
    """One logistic regression per label; C with the best validation mean average precision."""
    from sklearn.metrics import average_precision_score

    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    history = []
    for c in cs:
        fitted = [_label_model(x_train, y_train[:, j], c) for j in range(y_train.shape[1])]
        weight, bias = np.stack([w for w, _ in fitted]), np.array([b for _, b in fitted])
        scores = np.asarray(x_val @ weight.T) + bias
        present = [j for j in range(y_val.shape[1]) if y_val[:, j].any()]
        m_ap = float(np.mean([average_precision_score(y_val[:, j], scores[:, j]) for j in present])) if present else 0.0
        history.append({"C": float(c), "val_mean_average_precision": m_ap})
        if best is None or m_ap > best[0]:
            best = (m_ap, float(c), weight, bias)
    assert best is not None
    return ProbeResult(best[2], best[3], best[1], history)

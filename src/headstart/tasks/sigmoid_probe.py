"""The multi-label probe: one-vs-rest L2-regularized logistic regression on cached features, all labels at once.

One ``(L, D)`` weight matrix is fitted to the summed per-label binary cross-entropy with full-batch L-BFGS in
torch (scikit-learn's objective for each label, warm-started along the regularization path), with the
feature scaling folded into the returned weights, like :mod:`headstart.tasks.softmax_probe`.
"""

from __future__ import annotations

import numpy as np
import torch

from headstart.errors import HeadstartError
from headstart.metrics.multilabel import mean_average_precision
from headstart.tasks.base import ProbeResult, feature_scale
from headstart.tasks.softmax_probe import l2_linear_fit

__all__ = ["fit_sigmoid_probe", "sigmoid_regression"]


def sigmoid_regression(
    z: np.ndarray,
    Y: np.ndarray,
    c: float,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    pos_weight: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularized one-vs-rest logistic regression of every label column of ``Y``, solved with L-BFGS.

    Minimizes ``sum_i sum_l BCE(w_l . z_i + b_l, Y_il) / n + ||W||^2 / (2 C n)``: for each label
    scikit-learn's ``C * sum_i BCE + ||w||^2 / 2``, divided by ``C * n``, and summed over labels (they do
    not interact, so one solve fits them all). The bias is not penalized. ``pos_weight`` (L,) scales the
    loss of each label's positive examples, as in ``torch.nn.BCEWithLogitsLoss``. Returns
    ``(W (L, D), b (L,))``.
    """
    x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))  # (n, D)
    t = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32))  # (n, L)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)

    def data_loss(logits: torch.Tensor) -> torch.Tensor:  # logits (n, L)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, t, pos_weight=pw, reduction="sum") / len(t)

    return l2_linear_fit(x, t.shape[1], c, data_loss, init)


def _logits(z: np.ndarray, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(n, L) float64 logits of scaled features."""
    return (torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)) @ w.T + b).double().numpy()


def _bce(Y: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy over all examples and labels (unweighted), computed stably from logits."""
    return float((np.logaddexp(0.0, logits) - Y * logits).mean())


def _micro_f1(Y: np.ndarray, pred: np.ndarray) -> float:
    """Micro-F1 over all label decisions (0 when nothing is true nor predicted)."""
    tp, denom = float((Y * pred).sum()), float(Y.sum() + pred.sum())
    return 2.0 * tp / denom if denom > 0 else 0.0


def _check(x_train: np.ndarray, Y_train: np.ndarray, x_val: np.ndarray, Y_val: np.ndarray, cs: list[float]) -> None:
    """Raise unless features and multi-hot targets line up and ``cs`` holds positive values."""
    for name, x, Y in (("train", x_train, Y_train), ("val", x_val, Y_val)):
        if x.ndim != 2 or Y.ndim != 2 or len(x) != len(Y) or len(x) == 0:
            raise HeadstartError(
                f"{name} features {x.shape} and targets {Y.shape} must be (n, D) and (n, L) with the same n > 0; "
                "pass one multi-hot row per feature row"
            )
    if Y_train.shape[1] != Y_val.shape[1] or x_train.shape[1] != x_val.shape[1]:
        raise HeadstartError(
            f"train {x_train.shape}/{Y_train.shape} and val {x_val.shape}/{Y_val.shape} disagree in feature "
            "or label width; extract both splits with the same backbone and label list"
        )
    bad = np.setdiff1d(np.unique(np.concatenate([Y_train.ravel(), Y_val.ravel()])), [0, 1])
    if len(bad):
        raise HeadstartError(f"multi-label targets must be 0/1 (multi-hot), got {bad[:5].tolist()}")
    if not cs or min(cs) <= 0:
        raise HeadstartError(f"cs={cs} must list positive inverse regularization strengths, e.g. [0.01, 0.1, 1.0]")


def _pos_weight(pos_weight: np.ndarray | None, n_labels: int) -> np.ndarray | None:
    if pos_weight is None:
        return None
    pw = np.asarray(pos_weight, dtype=np.float64)
    if pw.shape != (n_labels,) or not (pw > 0).all():
        raise HeadstartError(
            f"pos_weight {pw.tolist()} must hold one positive weight per label ({n_labels}); e.g. negatives / positives"
        )
    return pw


def fit_sigmoid_probe(
    x_train: np.ndarray,
    Y_train: np.ndarray,
    x_val: np.ndarray,
    Y_val: np.ndarray,
    cs: list[float],
    patience: int = 2,
    pos_weight: np.ndarray | None = None,
) -> ProbeResult:
    """Fit the multi-label probe for each C along the regularization path (strong to weak, warm-started).

    Features are centered and scaled by :func:`~headstart.tasks.base.feature_scale` first (folded into the
    returned weights, so raw features go in). Best = highest validation mean average precision (over the
    labels with a validation positive), ties broken by lower validation BCE; the path stops after ``patience`` Cs
    without improvement. ``history`` holds one record per C: ``C``, ``train_loss`` and ``val_loss`` (mean BCE per
    example and label), ``val_mean_average_precision`` (None when no label has a validation positive) and
    ``val_micro_f1`` (at threshold 0.5).
    """
    from scipy.special import expit

    Y_train, Y_val = np.asarray(Y_train, dtype=np.float64), np.asarray(Y_val, dtype=np.float64)
    _check(x_train, Y_train, x_val, Y_val, cs)
    pw = _pos_weight(pos_weight, Y_train.shape[1])
    mu, sd = feature_scale(x_train)
    ztr, zval = (x_train - mu) / sd, (x_val - mu) / sd
    best: tuple[float, float] | None = None
    history, chosen, init, since_best = [], None, None, 0
    for c in sorted(cs):
        init = sigmoid_regression(ztr, Y_train, c, init, pw)
        s_val = _logits(zval, *init)
        p_val = expit(s_val)  # (n_val, L) probabilities
        m_ap = mean_average_precision(Y_val, p_val)
        loss = _bce(Y_val, s_val)
        history.append(
            {
                "C": c,
                "train_loss": _bce(Y_train, _logits(ztr, *init)),
                "val_loss": loss,
                "val_mean_average_precision": m_ap,
                "val_micro_f1": _micro_f1(Y_val, (p_val >= 0.5).astype(np.float64)),
            }
        )
        key = (-np.inf if m_ap is None else m_ap, -loss)
        if best is None or key > best:
            best, chosen, since_best = key, (c, init), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    assert chosen is not None
    c, (w, b) = chosen
    weight = w.double().numpy() / sd
    return ProbeResult(weight, b.double().numpy() - weight @ mu, c, history)

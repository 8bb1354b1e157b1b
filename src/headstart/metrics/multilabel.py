"""Metrics of multi-label predictions (several labels per example, possibly none), computed with scikit-learn.

Targets are a multi-hot matrix ``Y`` (n, L) of 0/1, scores are per-label probabilities ``P`` (n, L), and a
label is predicted where its score reaches its threshold. :func:`multilabel_metrics` reports micro / macro F1,
average precision, subset accuracy and Hamming loss with bootstrap intervals and warnings about thin labels;
:func:`tune_label_thresholds` picks one threshold per label on validation.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.metrics.bootstrap import percentile_interval
from headstart.metrics.threshold import parse_objective

__all__ = [
    "MIN_POSITIVES",
    "decide_labels",
    "label_warnings",
    "mean_average_precision",
    "multilabel_metrics",
    "tune_label_thresholds",
]

logger = logging.getLogger(__name__)

MIN_POSITIVES = 5  # fewer positive evaluated examples than this in a label triggers a warning
_CELLS_PER_CHUNK = 4_000_000  # resample counts held in memory at once (B * n), as in bootstrap.py


def _check_inputs(Y: np.ndarray, P: np.ndarray, n_labels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(Y int64, P float64)`` after checking that both are ``(n, L)``, n > 0, Y holds 0/1 and P is finite."""
    Y, P = np.asarray(Y), np.asarray(P, dtype=np.float64)
    width = P.shape[1] if n_labels is None and P.ndim == 2 else n_labels
    if Y.ndim != 2 or Y.shape != P.shape or P.shape[1] != width:
        raise HeadstartError(
            f"targets {Y.shape} and scores {P.shape} must both be (examples, labels) with "
            f"{width if width is not None else 'the same number of'} label columns; "
            "pass the multi-hot targets and the sigmoid scores of the same examples"
        )
    if len(Y) == 0:
        raise HeadstartError("there are no examples to score; evaluate on a split that has some")
    bad = np.setdiff1d(np.unique(Y), [0, 1])
    if len(bad):
        raise HeadstartError(f"multi-label targets must be 0/1 (multi-hot), got {bad[:5].tolist()}")
    if not np.isfinite(P).all():
        raise HeadstartError("the scores hold NaN or infinite values; check the model's outputs")
    return Y.astype(np.int64), P


def _as_thresholds(thresholds: np.ndarray | float | None, n_labels: int) -> np.ndarray:
    """(L,) float64 thresholds: 0.5 each when None, a scalar broadcast, or the given per-label array."""
    t = np.full(n_labels, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    t = np.broadcast_to(t, (n_labels,)) if t.ndim == 0 else t
    if t.shape != (n_labels,):
        raise HeadstartError(
            f"thresholds have shape {t.shape} but there are {n_labels} labels; pass one threshold per label, in order"
        )
    bad = t[~((t >= 0.0) & (t <= 1.0))]
    if len(bad):
        raise HeadstartError(f"thresholds {bad[:5].tolist()} are not probabilities; use values in [0, 1], e.g. 0.5")
    return t.astype(np.float64)


def decide_labels(P: np.ndarray, thresholds: np.ndarray | float | None = None) -> np.ndarray:
    """(n, L) int64 multi-hot decisions: label ``j`` is predicted where ``P[:, j] >= thresholds[j]`` (0.5 if None).

    Example:
        >>> decide_labels(np.array([[0.9, 0.2], [0.4, 0.6]]), np.array([0.5, 0.1])).tolist()
        [[1, 1], [0, 1]]
    """
    P = np.asarray(P)
    if P.ndim != 2:
        raise HeadstartError(f"scores have shape {P.shape}; pass an (examples, labels) matrix of probabilities")
    return (P >= _as_thresholds(thresholds, P.shape[1])).astype(np.int64)


def _average_precisions(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(L,) average precision of each label; NaN for a label without a positive example."""
    from sklearn.metrics import average_precision_score

    return np.array([average_precision_score(y, p) if y.any() else np.nan for y, p in zip(Y.T, P.T, strict=True)])


def mean_average_precision(Y: np.ndarray, P: np.ndarray) -> float | None:
    """Macro average precision over the labels with at least one positive; None when no label has one.

    Example:
        >>> mean_average_precision(np.array([[1, 0], [0, 0]]), np.array([[0.9, 0.3], [0.2, 0.1]]))
        1.0
    """
    Y, P = _check_inputs(Y, P)
    ap = _average_precisions(Y, P)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else None


def _sk(Y: np.ndarray) -> np.ndarray:
    """What scikit-learn reads as multi-label: a single label column is passed as a 1-D binary vector."""
    return Y[:, 0] if Y.shape[1] == 1 else Y


def _prf(Y: np.ndarray, pred: np.ndarray, average: str | None) -> tuple[Any, Any, Any, Any]:
    """scikit-learn's precision / recall / F1 / support over the label columns (zero_division=0)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = [1] if Y.shape[1] == 1 else None  # one column: score the positive class only
    return precision_recall_fscore_support(_sk(Y), _sk(pred), labels=labels, average=average, zero_division=0)


def _optional(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _per_label(Y: np.ndarray, P: np.ndarray, pred: np.ndarray, t: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """``{label: {precision, recall, f1, average_precision, roc_auc, support, threshold}}``; None where undefined."""
    from sklearn.metrics import roc_auc_score

    p, r, f, s = _prf(Y, pred, None)
    ap = _average_precisions(Y, P)
    out = {}
    for j, label in enumerate(labels):
        y = Y[:, j]
        auc = float(roc_auc_score(y, P[:, j])) if 0 < y.sum() < len(y) else None
        out[label] = {
            "precision": float(p[j]),
            "recall": float(r[j]),
            "f1": float(f[j]),
            "average_precision": _optional(ap[j]),
            "roc_auc": auc,
            "support": int(s[j]),
            "threshold": float(t[j]),
        }
    return out


def label_warnings(support: np.ndarray, n_predicted: np.ndarray, labels: list[str]) -> list[str]:
    """Plain-language warnings: labels with under :data:`MIN_POSITIVES` positive examples, and labels with
    positives that the model never predicts.

    Example:
        >>> for line in label_warnings(np.array([3, 40, 0]), np.array([2, 0, 0]), ["crack", "dirt", "burn"]):
        ...     print(line)
        label 'crack' has only 3 positive test examples; its scores are unreliable
        label 'dirt' is never predicted (recall 0)
        label 'burn' has no positive test examples; its recall is reported as 0 and its AP and ROC-AUC are undefined
    """
    out: list[str] = []
    for label, count, predicted in zip(labels, support.tolist(), n_predicted.tolist(), strict=True):
        if count == 0:
            out.append(
                f"label {label!r} has no positive test examples; "
                "its recall is reported as 0 and its AP and ROC-AUC are undefined"
            )
        elif count < MIN_POSITIVES:
            out.append(f"label {label!r} has only {count} positive test examples; its scores are unreliable")
        if predicted == 0 and count > 0:
            out.append(f"label {label!r} is never predicted (recall 0)")
    return out


def _boot_macro_f1(Y: np.ndarray, pred: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B,) macro-F1 over all labels (0 where a label is neither true nor predicted) of each resample.

    ``W`` (B, n) counts how often each example is drawn in each resample.
    """
    tp = W @ (Y * pred)  # (B, L)
    denom = W @ (Y + pred)  # 2tp + fp + fn, (B, L)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean(1)


def _boot_ap(y: np.ndarray, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B,) average precision of one label on each resample (``W`` (B, n) draw counts); NaN without positives.

    The scores are sorted once; each resample only reweights the cumulative true / all counts at the end
    of each group of tied scores, which is what scikit-learn's AP sums over.
    """
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # last position of each tied group
    w = W[:, order]  # (B, n)
    tp = np.cumsum(w * y[order], axis=1)[:, ends]  # (B, U) positives scored at or above each group
    seen = np.cumsum(w, axis=1)[:, ends]  # (B, U) all examples scored at or above each group
    gain = np.diff(tp, axis=1, prepend=0.0)  # new positives per group: recall steps times n_pos
    precision = tp / np.maximum(seen, 1.0)  # a group nobody drew adds no positives, so its 0 never counts
    n_pos = tp[:, -1]
    return np.where(n_pos > 0, (gain * precision).sum(1) / np.maximum(n_pos, 1.0), np.nan)


def _boot_map(Y: np.ndarray, P: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B,) mean AP over the labels drawn with a positive in each resample; NaN when none is."""
    ap = np.stack([_boot_ap(Y[:, j], P[:, j], W) for j in range(Y.shape[1])], axis=1)  # (B, L)
    defined = np.isfinite(ap)
    count = defined.sum(1)
    return np.where(count > 0, np.where(defined, ap, 0.0).sum(1) / np.maximum(count, 1), np.nan)


def _bootstrap(Y: np.ndarray, pred: np.ndarray, P: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """95% percentile-bootstrap intervals ``[lo, hi]`` (or None) of ``macro_f1`` and ``mean_average_precision``."""
    if n_boot < 0:
        raise HeadstartError(f"n_boot={n_boot} is negative; use 0 to skip the bootstrap or e.g. 1000 resamples")
    n = len(Y)
    if n_boot == 0:
        return {"macro_f1": None, "mean_average_precision": None}
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // n)
    yf, pf = Y.astype(np.float64), pred.astype(np.float64)
    f1s, maps = [], []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))  # (B, n) resampled example indices
        W = np.bincount((np.arange(b)[:, None] * n + idx).ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        f1s.append(_boot_macro_f1(yf, pf, W))
        maps.append(_boot_map(yf, P, W))
    return {
        "macro_f1": percentile_interval(np.concatenate(f1s)),
        "mean_average_precision": percentile_interval(np.concatenate(maps)),
    }


def multilabel_metrics(
    Y: np.ndarray,
    P: np.ndarray,
    labels: list[str],
    thresholds: np.ndarray | float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of one evaluated (non-empty) multi-label set as a JSON-ready dict; None where undefined.

    Keys: ``micro_f1``, ``macro_f1``, ``mean_average_precision`` (macro AP over the labels with a positive),
    ``micro_average_precision``, ``subset_accuracy`` (every label of a row right), ``hamming_loss``,
    ``per_label``, ``labels``, ``n``, ``ci95`` and ``warnings``. Hard predictions are ``P >= thresholds``
    (per label, 0.5 when None); the APs and ROC-AUCs use the scores and ignore the thresholds. Point values
    are scikit-learn's (F1 with ``zero_division=0``). ``ci95`` holds 95% percentile-bootstrap intervals of
    ``macro_f1`` and ``mean_average_precision`` (``n_boot`` resamples of the rows, seeded by ``seed``).

    Example:
        >>> Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        >>> P = np.array([[0.8, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.2]])
        >>> m = multilabel_metrics(Y, P, ["crack", "dirt"], n_boot=0)
        >>> m["micro_f1"], m["subset_accuracy"], m["hamming_loss"], m["mean_average_precision"]
        (0.8571428571428571, 0.75, 0.125, 1.0)
    """
    from sklearn.metrics import accuracy_score, average_precision_score, hamming_loss

    Y, P = _check_inputs(Y, P, len(labels))
    t = _as_thresholds(thresholds, len(labels))
    pred = (P >= t).astype(np.int64)
    micro_ap = average_precision_score(_sk(Y), _sk(P), average="micro") if Y.any() else None
    return {
        "micro_f1": float(_prf(Y, pred, "micro")[2]),
        "macro_f1": float(_prf(Y, pred, "macro")[2]),
        "mean_average_precision": mean_average_precision(Y, P),
        "micro_average_precision": None if micro_ap is None else float(micro_ap),
        "subset_accuracy": float(accuracy_score(_sk(Y), _sk(pred))),
        "hamming_loss": float(hamming_loss(_sk(Y), _sk(pred))),
        "per_label": _per_label(Y, P, pred, t, labels),
        "labels": list(labels),
        "n": int(len(Y)),
        "ci95": _bootstrap(Y, pred, P, n_boot, seed),
        "warnings": label_warnings(Y.sum(0), pred.sum(0), labels),
    }


def _best_threshold(y: np.ndarray, score: np.ndarray, recall: float | None) -> float:
    """The threshold of one label (both classes present) that best meets the objective.

    Candidates cut between consecutive distinct scores (their midpoint), plus the lowest score (every
    example positive). ``recall`` None maximizes F1 (the highest threshold on ties); otherwise the highest
    threshold whose recall is at least ``recall``.
    """
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # last position of each tied group
    tp = np.cumsum(y[order])[ends].astype(np.float64)  # positives predicted when cutting below group g
    seen = ends + 1.0  # examples predicted positive
    n_pos = tp[-1]
    cut = ranked[ends]  # (U,) distinct scores, descending
    below = np.r_[cut[1:], cut[-1]]
    mid = (cut + below) / 2.0
    candidates = np.where(mid > below, mid, cut)  # equals the group's score when no float lies strictly between
    if recall is not None:
        first = np.flatnonzero(tp / n_pos >= recall - 1e-12)[0]
    else:
        f1 = 2.0 * tp / (seen + n_pos)  # 2tp / (2tp + fp + fn)
        first = np.flatnonzero(f1 >= f1.max() - 1e-12)[0]
    return float(candidates[first])


def tune_label_thresholds(Y_val: np.ndarray, P_val: np.ndarray, objective: str = "f1") -> np.ndarray:
    """(L,) per-label decision thresholds tuned on validation scores (``P >= t`` predicts the label).

    ``"f1"`` maximizes each label's F1; ``"recall:R"`` takes each label's highest threshold with recall at
    least ``R`` (see :func:`headstart.metrics.parse_objective`). Candidates are the midpoints between
    consecutive distinct scores and the lowest score. A label without positives or without negatives in
    validation keeps 0.5.

    Example:
        >>> Y = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
        >>> P = np.array([[0.4, 0.1], [0.3, 0.2], [0.1, 0.25], [0.2, 0.75]])
        >>> tune_label_thresholds(Y, P).tolist()  # label 0: cut between 0.3 and 0.2; label 1: between 0.75 and 0.25
        [0.25, 0.5]
    """
    _, target = parse_objective(objective)
    Y, P = _check_inputs(Y_val, P_val)
    out = np.full(Y.shape[1], 0.5)
    one_sided = []
    for j in range(Y.shape[1]):
        if 0 < Y[:, j].sum() < len(Y):
            out[j] = _best_threshold(Y[:, j], P[:, j], target)
        else:
            one_sided.append(j)
    if one_sided:
        logger.warning(
            "label column(s) %s have no positive or no negative validation example; their threshold stays 0.5",
            one_sided,
        )
    return out

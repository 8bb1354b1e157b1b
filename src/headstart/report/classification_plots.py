"""The classification report's figures: confusion matrix, per-class bars, ROC and precision-recall curves,
the reliability diagram, and the ROC per strategy of a comparison (inline SVG, see :mod:`headstart.report.plots`).

Example:
    >>> svg = confusion_matrix([[5, 1], [2, 4]], ["cat", "dog"])
    >>> svg.startswith("<svg") and "http" not in svg
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from headstart.report.plots import (
    COLORS,
    GREY,
    HALF,
    count_matrix,
    curve_figure,
    figure_style,
    metric_bars,
    to_svg,
)

__all__ = [
    "compare_roc",
    "confusion_matrix",
    "per_class_bars",
    "pr_curves",
    "reliability_diagram",
    "roc_curves",
]


def confusion_matrix(cm: Sequence[Sequence[float]], labels: Sequence[str]) -> str:
    """Counts annotated in each cell, colour = fraction of the true class (row-normalised)."""
    counts = np.asarray(cm, dtype=float)  # (K, K) rows true, columns predicted
    norm = counts / np.clip(counts.sum(1, keepdims=True), 1, None)
    return count_matrix(counts, norm, labels, ("predicted", "true"), "fraction of true class", "confusion matrix")


def per_class_bars(per_class: Mapping[str, Mapping[str, float]], labels: Sequence[str]) -> str:
    """Grouped precision / recall / F1 bars per class, support under each class name."""
    return metric_bars(per_class, labels, ("precision", "recall", "f1"), "per-class precision recall F1")


def _one_vs_rest(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(class name, is-positive, score) per curve: binary -> the positive class labels[1]; else each class."""
    classes = [1] if len(labels) == 2 else range(len(labels))
    out = []
    for c in classes:
        positive = y == c
        if 0 < positive.sum() < len(y):  # a curve needs both positives and negatives
            out.append((labels[c], positive, proba[:, c]))
    return out


def roc_curves(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> str | None:
    """ROC curve of the positive class (binary) or of each class one-vs-rest; None when undefined."""
    curves = _one_vs_rest(y, proba, labels)
    if not curves:
        return None
    with figure_style():
        title = f"ROC (positive class: {labels[1]})" if len(labels) == 2 else "ROC, each class vs rest"
        fig, ax = curve_figure(title)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9)
        for name, positive, score in curves:
            fpr, tpr, _ = roc_curve(positive, score)
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        return to_svg(fig, "ROC curves")


def pr_curves(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> str | None:
    """Precision-recall curve(s), same classes as :func:`roc_curves`; dotted lines at each class's prevalence."""
    curves = _one_vs_rest(y, proba, labels)
    if not curves:
        return None
    with figure_style():
        title = f"Precision-recall (positive: {labels[1]})" if len(labels) == 2 else "Precision-recall, each class"
        fig, ax = curve_figure(title)
        for i, (name, positive, score) in enumerate(curves):
            precision, recall, _ = precision_recall_curve(positive, score)
            ap = average_precision_score(positive, score)
            color = COLORS[i % len(COLORS)]
            ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})", color=color)
            ax.axhline(positive.mean(), color=color, linestyle=":", linewidth=0.8)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="lower left")
        return to_svg(fig, "precision-recall curves")


def _bin_arrays(rel: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(edges, confidence, accuracy, count) over all bins; ``bin_index`` may list which bins the values are for."""
    edges = np.asarray(rel.get("bin_edges") or [], dtype=float)
    n = len(edges) - 1
    lists = [list(rel.get(key) or []) for key in ("confidence", "accuracy", "count")]
    if n < 1 or len({len(v) for v in lists}) != 1:
        return None
    index = list(rel.get("bin_index") or [])
    if len(lists[0]) != n and len(index) != len(lists[0]):
        return None
    where = np.arange(n) if len(lists[0]) == n else np.asarray(index, dtype=int)
    arrays = [np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)]
    for arr, values in zip(arrays, lists, strict=True):
        arr[where] = [np.nan if v is None else float(v) for v in values]
    return edges, arrays[0], arrays[1], np.nan_to_num(arrays[2])


def reliability_diagram(rel: Mapping[str, Any], ece: float | None = None) -> str | None:
    """Accuracy per confidence bin against the diagonal (top) and examples per bin (bottom); None if malformed."""
    arrays = _bin_arrays(rel)
    if arrays is None:
        return None
    edges, conf, acc, count = arrays
    if ece is None and count.sum() > 0:
        ece = float(np.nansum(count * np.abs(acc - conf)) / count.sum())
    with figure_style():
        fig = Figure(figsize=HALF, layout="constrained")
        ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        widths = np.diff(edges)
        left, acc0 = edges[:-1], np.nan_to_num(acc)
        ax.bar(left, acc0, widths, align="edge", color=COLORS[0], alpha=0.85, edgecolor="white", label="accuracy")
        gap = {"color": COLORS[3], "alpha": 0.25, "hatch": "//", "edgecolor": COLORS[3], "linewidth": 0}
        ax.bar(left, np.nan_to_num(conf - acc), widths, bottom=acc0, align="edge", label="gap to confidence", **gap)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9, label="perfect calibration")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("accuracy")
        ax.set_title("Reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
        ax.legend(loc="upper left")
        ax_n.bar(edges[:-1], count, widths, align="edge", color=GREY, edgecolor="white")
        ax_n.set_ylabel("count")
        ax_n.set_xlabel("confidence of the predicted class")
        ax_n.set_xlim(0, 1)
        return to_svg(fig, "reliability diagram")


def _macro_roc(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(fpr, tpr): the binary ROC, or the macro average of one-vs-rest ROCs on a common FPR grid."""
    curves = _one_vs_rest(y, proba, labels)
    if not curves:
        return None
    if len(labels) == 2:
        fpr, tpr, _ = roc_curve(curves[0][1], curves[0][2])
        return fpr, tpr
    grid = np.linspace(0.0, 1.0, 201)
    tprs = [np.interp(grid, *roc_curve(pos, score)[:2]) for _, pos, score in curves]
    return grid, np.mean(tprs, axis=0)


def compare_roc(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], labels: Sequence[str]) -> str | None:
    """One ROC per strategy from its (y, proba): binary -> positive class labels[1]; else macro-average OvR."""
    curves = {name: _macro_roc(y, p, labels) for name, (y, p) in predictions.items()}
    drawn = {name: c for name, c in curves.items() if c is not None}
    if not drawn:
        return None
    with figure_style():
        title = f"ROC (positive class: {labels[1]})" if len(labels) == 2 else "ROC, macro-average one-vs-rest"
        fig, ax = curve_figure(title)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9)
        for name, (fpr, tpr) in drawn.items():
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        return to_svg(fig, "ROC per strategy")

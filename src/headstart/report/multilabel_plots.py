"""The multi-label report's figures: per-label precision-recall curves and the label co-occurrence matrix
(inline SVG, see :mod:`headstart.report.plots`; per-label bars are :func:`headstart.report.plots.metric_bars`).

Example:
    >>> svg = cooccurrence(np.array([[1, 1], [1, 0], [0, 1]]), ["crack", "dirt"])
    >>> svg.startswith("<svg") and "http" not in svg
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

from headstart.report.plots import COLORS, count_matrix, figure_style, to_svg

__all__ = ["cooccurrence", "label_pr_curves"]


def label_pr_curves(Y: np.ndarray, P: np.ndarray, labels: Sequence[str]) -> str | None:
    """One precision-recall curve per label (that label's score against its presence), AP in the legend; None
    when no label has both positive and negative test examples."""
    drawn = [j for j in range(len(labels)) if 0 < Y[:, j].sum() < len(Y)]
    if not drawn:
        return None
    cmap = mpl.colormaps["tab20"]
    with figure_style():
        fig = Figure(figsize=(7.2, 3.8), layout="constrained")
        ax = fig.subplots()
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        ax.set_title("Precision-recall, each label")
        for n, j in enumerate(drawn):
            precision, recall, _ = precision_recall_curve(Y[:, j], P[:, j])
            ap = average_precision_score(Y[:, j], P[:, j])
            color = COLORS[n] if len(drawn) <= len(COLORS) else cmap(n % 20)
            ax.plot(recall, precision, drawstyle="steps-post", label=f"{labels[j]} (AP {ap:.3f})", color=color)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), ncols=1 + len(drawn) // 16)
        return to_svg(fig, "precision-recall curves per label")


def cooccurrence(Y: np.ndarray, labels: Sequence[str]) -> str:
    """Label pairs' counts of examples having both (the diagonal: each label's count), coloured by the fraction
    of the row label's examples that also have the column label."""
    counts = (Y.T @ Y).astype(float)  # (L, L)
    norm = counts / np.clip(np.diag(counts)[:, None], 1, None)
    scale = "fraction of the row label's examples"
    return count_matrix(counts, norm, labels, ("also labelled", "label"), scale, "label co-occurrence")

"""The regression report's figures: predicted against true values, the residuals, and the error per range of
the true value (inline SVG, see :mod:`headstart.report.plots`).

Example:
    >>> svg = scatter(np.array([0.0, 1.0, 2.0]), np.array([0.2, 0.9, 2.4]))
    >>> svg.startswith("<svg") and "http" not in svg
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from headstart.report.plots import COLORS, GREY, HALF, figure_style, to_svg

__all__ = ["error_bars", "residual_histogram", "scatter"]


def scatter(y: np.ndarray, pred: np.ndarray, name: str = "value") -> str:
    """Each test example's prediction against its true value, with the identity line (a perfect model)."""
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    pad = 0.04 * (hi - lo) if hi > lo else 0.5
    with figure_style():
        fig = Figure(figsize=HALF, layout="constrained")
        ax = fig.subplots()
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=GREY, linestyle="--", linewidth=0.9, label="y = x")
        alpha = 0.8 if len(y) <= 200 else 0.4
        ax.scatter(y, pred, s=16, color=COLORS[0], alpha=alpha, edgecolors="none", label="test examples")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_title("Predicted vs true")
        ax.legend(loc="upper left")
        return to_svg(fig, "predicted against true values")


def residual_histogram(y: np.ndarray, pred: np.ndarray) -> str:
    """Histogram of the errors (predicted - true), a line at 0 and one at the mean error (the bias)."""
    err = pred - y
    bins = int(np.clip(np.sqrt(len(err)) * 2, 5, 40))
    with figure_style():
        fig = Figure(figsize=HALF, layout="constrained")
        ax = fig.subplots()
        ax.hist(err, bins=bins, color=COLORS[0], alpha=0.85, edgecolor="white")
        ax.axvline(0.0, color=GREY, linestyle="--", linewidth=0.9, label="no error")
        ax.axvline(float(err.mean()), color=COLORS[1], linewidth=1.2, label=f"mean error {err.mean():+.3g}")
        ax.set_xlabel("error (predicted - true)")
        ax.set_ylabel("test examples")
        ax.set_title("Residuals")
        ax.grid(axis="x", visible=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="best")
        return to_svg(fig, "residual histogram")


def error_bars(ranges: Sequence[Mapping[str, Any]]) -> str | None:
    """MAE per range of the true value (``error_by_range`` rows), the count above each bar; None without rows."""
    if not ranges:
        return None
    names = [f"{r['low']:.3g} – {r['high']:.3g}" for r in ranges]
    mae = [float(r["mae"]) for r in ranges]
    with figure_style():
        fig = Figure(figsize=HALF, layout="constrained")
        ax = fig.subplots()
        bars = ax.bar(np.arange(len(ranges)), mae, 0.6, color=COLORS[0])
        ax.bar_label(bars, labels=[f"n={r['n']}" for r in ranges], fontsize=7, padding=2)
        ax.set_xticks(np.arange(len(ranges)), names, rotation=20 if len(ranges) > 4 else 0)
        ax.set_xlabel("true value range")
        ax.set_ylabel("MAE")
        ax.set_ylim(0, max(mae) * 1.15 if max(mae) > 0 else 1.0)
        ax.set_title("Error by range of the true value")
        ax.grid(axis="x", visible=False)
        return to_svg(fig, "error by range of the true value")

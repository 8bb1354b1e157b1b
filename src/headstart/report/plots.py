"""Report figures as inline SVG strings (and image thumbnails as PNG data URIs).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
backend is selected, no global figure registry holds them, and nothing needs ``plt.close``; each
figure is garbage once its SVG text is returned. Text stays text (``svg.fonttype: none``) so the
page's font applies, and every ``id`` is prefixed per figure so several SVGs share one page safely.

Example:
    >>> svg = confusion_matrix([[5, 1], [2, 4]], ["cat", "dog"])
    >>> svg.startswith("<svg") and "http" not in svg
    True
"""

from __future__ import annotations

import base64
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib >= 3.9; annotations only

__all__ = [
    "compare_curves",
    "compare_roc",
    "confusion_matrix",
    "lr_curves",
    "per_class_bars",
    "pr_curves",
    "reliability_diagram",
    "roc_curves",
    "thumbnail_data_uri",
    "training_curves",
    "unfreeze_label",
]

WIDE = (9.6, 3.3)  # inches: full-width figures (curves, learning rates)
HALF = (4.6, 3.6)  # inches: half-width figures, two per row (ROC, PR, confusion, reliability)
COLORS = ["#2563eb", "#ea580c", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#ca8a04", "#db2777", "#4b5563"]
GREY = "#9ca3af"
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "headstart",  # stable ids; they are prefixed per figure below
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#6b7280",
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "axes.prop_cycle": cycler(color=COLORS),
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "lines.linewidth": 1.6,
    "lines.markersize": 3.5,
}
_figure_ids = itertools.count(1)


@contextmanager
def _style() -> Iterator[None]:
    with mpl.rc_context():  # restores every rcParam on exit
        mpl.rcParams.update(STYLE)
        yield


def _svg(fig: Figure, title: str) -> str:
    """The figure as an ``<svg>`` element fit for inline HTML: no XML prolog, metadata or namespace URLs."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    for namespace in (' xmlns="http://www.w3.org/2000/svg"', ' xmlns:xlink="http://www.w3.org/1999/xlink"'):
        text = text.replace(namespace, "")  # HTML knows inline SVG; no URL may remain in the page
    prefix = f"f{next(_figure_ids)}"
    text = text.replace("xlink:href=", "href=").replace('href="#', f'href="#{prefix}-')
    text = re.sub(r'\bid="', f'id="{prefix}-', text).replace("url(#", f"url(#{prefix}-")
    label = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg", f'<svg class="plot" role="img" aria-label="{label}"', 1)


def _values(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def unfreeze_label(events: Sequence[str]) -> str | None:
    """Short label for the 'unfroze ...' events of one epoch, or None when there are none.

    >>> unfreeze_label(["unfroze block.6", "unfroze block.5", "unfroze block.4"])
    'unfroze block.6 … block.4 (3 groups)'
    >>> unfreeze_label(["unfroze block.4 (plateau)", "probe C=0.01"])
    'unfroze block.4 (plateau)'
    """
    names = [e.removeprefix("unfroze").strip() for e in events if "unfroze" in e]
    if not names:
        return None
    if len(names) == 1:
        return f"unfroze {names[0]}"
    return f"unfroze {names[0]} … {names[-1]} ({len(names)} groups)"


def _mark_unfreezes(ax: Axes, history: Sequence[Mapping[str, Any]], labels: bool) -> None:
    for row in history:
        label = unfreeze_label(row.get("events") or [])
        if label is None:
            continue
        ax.axvline(row["epoch"], color=GREY, linestyle="--", linewidth=0.9, zorder=1)
        if labels:
            style: dict[str, Any] = {"rotation": 90, "va": "top", "ha": "left", "fontsize": 7, "color": "#4b5563"}
            ax.text(row["epoch"], 0.98, f" {label}", transform=ax.get_xaxis_transform(), **style)


def _epoch_axis(ax: Axes, epochs: np.ndarray) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)


def training_curves(history: Sequence[Mapping[str, Any]]) -> str:
    """Train/val loss (left) and val accuracy / macro-F1 (right) per epoch, dashed lines where groups unfroze."""
    epochs = _values(history, "epoch")
    with _style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax_loss, ax_val = fig.subplots(1, 2)
        for key, name in (("train_loss", "train loss"), ("val_loss", "val loss")):
            ax_loss.plot(epochs, _values(history, key), marker="o", label=name)
        for key, name in (("val_accuracy", "val accuracy"), ("val_macro_f1", "val macro-F1")):
            ax_val.plot(epochs, _values(history, key), marker="o", label=name)
        for ax, title in ((ax_loss, "Loss"), (ax_val, "Validation accuracy and macro-F1")):
            _mark_unfreezes(ax, history, labels=ax is ax_loss)
            _epoch_axis(ax, epochs)
            ax.set_title(title)
            ax.legend(loc="best")
        return _svg(fig, "training curves")


def lr_curves(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Learning rate per optimizer group (log scale; ``/no_decay`` twins skipped); None without learning rates."""
    groups = list(dict.fromkeys(g for row in history for g in (row.get("lr") or {}) if "/no_decay" not in g))
    epochs = _values(history, "epoch")
    series = {g: np.array([(row.get("lr") or {}).get(g) or np.nan for row in history], dtype=float) for g in groups}
    series = {g: np.where(v > 0, v, np.nan) for g, v in series.items() if np.any(v > 0)}
    if not series:
        return None
    with _style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["viridis"]
        for i, (group, values) in enumerate(series.items()):
            color = COLORS[i] if len(series) <= len(COLORS) else cmap(i / max(len(series) - 1, 1))
            ax.plot(epochs, values, marker="o", label=group, color=color)
        ax.set_yscale("log")
        ax.set_ylabel("learning rate at end of epoch")
        _mark_unfreezes(ax, history, labels=False)
        _epoch_axis(ax, epochs)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), ncols=1 + len(series) // 12)
        return _svg(fig, "learning rate per group")


def confusion_matrix(cm: Sequence[Sequence[float]], labels: Sequence[str]) -> str:
    """Counts annotated in each cell, colour = fraction of the true class (row-normalised)."""
    counts = np.asarray(cm, dtype=float)  # (K, K) rows true, columns predicted
    k = len(labels)
    norm = counts / np.clip(counts.sum(1, keepdims=True), 1, None)
    side = min(max(3.6, 0.5 * k + 2.0), 9.0)
    with _style():
        fig = Figure(figsize=(side + 0.8, side), layout="constrained")
        ax = fig.subplots()
        mesh = ax.pcolormesh(norm, cmap="Blues", vmin=0, vmax=1, edgecolors="white", linewidth=1)
        for i, j in itertools.product(range(k), range(k)):
            style: dict[str, Any] = {
                "color": "white" if norm[i, j] > 0.55 else "#111827",
                "fontsize": 9 if k <= 8 else 7,
            }
            ax.text(j + 0.5, i + 0.5, f"{int(counts[i, j])}", ha="center", va="center", **style)
        ticks = np.arange(k) + 0.5
        rotate = max((len(s) for s in labels), default=0) > 6 or k > 6
        ax.set_xticks(ticks, labels, rotation=40 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticks(ticks, labels)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        fig.colorbar(mesh, ax=ax, shrink=0.8, label="fraction of true class")
        return _svg(fig, "confusion matrix")


def per_class_bars(per_class: Mapping[str, Mapping[str, float]], labels: Sequence[str]) -> str:
    """Grouped precision / recall / F1 bars per class, support under each class name."""
    k = len(labels)
    x = np.arange(k)
    with _style():
        fig = Figure(figsize=(min(max(4.6, 0.75 * k + 2.0), 11.0), 3.2), layout="constrained")
        ax = fig.subplots()
        for i, metric in enumerate(("precision", "recall", "f1")):
            values = [float(per_class.get(c, {}).get(metric) or 0.0) for c in labels]
            ax.bar(x + (i - 1) * 0.27, values, 0.27, label=metric if metric != "f1" else "F1", color=COLORS[i])
        names = [f"{c}\n(n={int(per_class.get(c, {}).get('support') or 0)})" for c in labels]
        ax.set_xticks(x, names, rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.06), ncols=3, borderaxespad=0)
        return _svg(fig, "per-class precision recall F1")


def _one_vs_rest(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(class name, is-positive, score) per curve: binary -> the positive class labels[1]; else each class."""
    classes = [1] if len(labels) == 2 else range(len(labels))
    out = []
    for c in classes:
        positive = y == c
        if 0 < positive.sum() < len(y):  # a curve needs both positives and negatives
            out.append((labels[c], positive, proba[:, c]))
    return out


def _curve_figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=HALF, layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_aspect("equal")
    ax.set_title(title)
    return fig, ax


def roc_curves(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> str | None:
    """ROC curve of the positive class (binary) or of each class one-vs-rest; None when undefined."""
    curves = _one_vs_rest(y, proba, labels)
    if not curves:
        return None
    with _style():
        title = f"ROC (positive class: {labels[1]})" if len(labels) == 2 else "ROC, each class vs rest"
        fig, ax = _curve_figure(title)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9)
        for name, positive, score in curves:
            fpr, tpr, _ = roc_curve(positive, score)
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        return _svg(fig, "ROC curves")


def pr_curves(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> str | None:
    """Precision-recall curve(s), same classes as :func:`roc_curves`; dotted lines at each class's prevalence."""
    curves = _one_vs_rest(y, proba, labels)
    if not curves:
        return None
    with _style():
        title = f"Precision-recall (positive: {labels[1]})" if len(labels) == 2 else "Precision-recall, each class"
        fig, ax = _curve_figure(title)
        for i, (name, positive, score) in enumerate(curves):
            precision, recall, _ = precision_recall_curve(positive, score)
            ap = average_precision_score(positive, score)
            color = COLORS[i % len(COLORS)]
            ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})", color=color)
            ax.axhline(positive.mean(), color=color, linestyle=":", linewidth=0.8)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="lower left")
        return _svg(fig, "precision-recall curves")


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
    with _style():
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
        return _svg(fig, "reliability diagram")


def compare_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """Validation macro-F1 (or accuracy, when a run lacks F1) per epoch, one line per strategy."""
    runs = {name: h for name, h in histories.items() if h}
    if not runs:
        return None
    has_f1 = all(any(r.get("val_macro_f1") is not None for r in h) for h in runs.values())
    key, name = ("val_macro_f1", "validation macro-F1") if has_f1 else ("val_accuracy", "validation accuracy")
    with _style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        for strategy, history in runs.items():
            ax.plot(_values(history, "epoch"), _values(history, key), marker="o", markersize=4.5, label=strategy)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(f"{name[0].upper()}{name[1:]} per epoch (probe runs: one point)")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return _svg(fig, "validation curves per strategy")


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
    with _style():
        title = f"ROC (positive class: {labels[1]})" if len(labels) == 2 else "ROC, macro-average one-vs-rest"
        fig, ax = _curve_figure(title)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9)
        for name, (fpr, tpr) in drawn.items():
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        return _svg(fig, "ROC per strategy")


def thumbnail_data_uri(image: np.ndarray, size: int = 144) -> str:
    """A PNG ``data:`` URI of an HxW or HxWx3 image, shrunk (or enlarged, pixel-exact) to about ``size`` px."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise HeadstartError(f"example images must be HxW or HxWx3, not shape {arr.shape}; fix the examples callable")
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.dtype.kind == "f" and float(np.nanmax(arr, initial=0)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr.astype(float) * scale), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    factor = size // max(img.size)
    if factor >= 2:
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

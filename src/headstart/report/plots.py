"""Report figures as inline SVG strings (and image thumbnails as PNG data URIs): the shared figure style and
the figures every task's report has (training curves, learning rates, validation curves per strategy).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
backend is selected, no global figure registry holds them, and nothing needs ``plt.close``; each
figure is garbage once its SVG text is returned. Text stays text (``svg.fonttype: none``) so the
page's font applies, and every ``id`` is prefixed per figure so several SVGs share one page safely.
Each task's own figures live in ``classification_plots``, ``regression_plots`` and ``multilabel_plots``.

Example:
    >>> svg = training_curves([{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_r2": 0.4}])
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

from headstart.errors import HeadstartError
from headstart.report.metric_keys import metric_name

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib >= 3.9; annotations only

__all__ = [
    "COLORS",
    "GREY",
    "HALF",
    "WIDE",
    "compare_curves",
    "count_matrix",
    "curve_figure",
    "figure_style",
    "lr_curves",
    "metric_bars",
    "series",
    "thumbnail_data_uri",
    "to_svg",
    "training_curves",
    "unfreeze_label",
    "validation_keys",
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
def figure_style() -> Iterator[None]:
    """The report's matplotlib style, for the figures built inside the block."""
    with mpl.rc_context():  # restores every rcParam on exit
        mpl.rcParams.update(STYLE)
        yield


def to_svg(fig: Figure, title: str) -> str:
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


def series(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``key`` of every row as floats, NaN where it is missing or None."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def curve_figure(title: str) -> tuple[Figure, Axes]:
    """A half-width square figure with both axes on [0, 1] (ROC, precision-recall)."""
    fig = Figure(figsize=HALF, layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_aspect("equal")
    ax.set_title(title)
    return fig, ax


def count_matrix(
    counts: np.ndarray, norm: np.ndarray, labels: Sequence[str], axes: tuple[str, str], scale: str, title: str
) -> str:
    """A (K, K) matrix of counts annotated in each cell, coloured by ``norm`` (0..1); ``axes``: the x and y
    axis names, ``scale``: the colour bar's (a confusion matrix, a label co-occurrence matrix)."""
    k = len(labels)
    side = min(max(3.6, 0.5 * k + 2.0), 9.0)
    with figure_style():
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
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        fig.colorbar(mesh, ax=ax, shrink=0.8, label=scale)
        return to_svg(fig, title)


def metric_bars(per: Mapping[str, Mapping[str, Any]], labels: Sequence[str], metrics: Sequence[str], title: str) -> str:
    """Grouped bars of ``metrics`` (0..1) per class or label, its support under each name; missing values as 0."""
    k, width = len(labels), 0.81 / len(metrics)
    x = np.arange(k)
    with figure_style():
        fig = Figure(figsize=(min(max(4.6, 0.25 * len(metrics) * k + 2.0), 11.0), 3.2), layout="constrained")
        ax = fig.subplots()
        for i, metric in enumerate(metrics):
            values = [float(per.get(c, {}).get(metric) or 0.0) for c in labels]
            offset = (i - (len(metrics) - 1) / 2) * width
            ax.bar(x + offset, values, width, label=metric_name(metric), color=COLORS[i])
        names = [f"{c}\n(n={int(per.get(c, {}).get('support') or 0)})" for c in labels]
        ax.set_xticks(x, names, rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.06), ncols=len(metrics), borderaxespad=0)
        return to_svg(fig, title)


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


def validation_keys(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``val_*`` keys of a history other than ``val_loss``, in the order they first appear.

    >>> validation_keys([{"epoch": 1, "val_loss": 1.0, "val_r2": 0.4, "val_mae": 0.6}])
    ['val_r2', 'val_mae']
    """
    keys = (k for row in history for k in row if k.startswith("val_") and k != "val_loss")
    return list(dict.fromkeys(keys))


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def training_curves(history: Sequence[Mapping[str, Any]]) -> str:
    """Train/val loss (left) and the task's other validation metrics (right: accuracy and macro-F1, R² and MAE,
    ...) per epoch, dashed lines where groups unfroze."""
    epochs = series(history, "epoch")
    keys = validation_keys(history)
    names = [metric_name(k) for k in keys]
    with figure_style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax_loss, ax_val = fig.subplots(1, 2)
        for key, name in (("train_loss", "train loss"), ("val_loss", "val loss")):
            ax_loss.plot(epochs, series(history, key), marker="o", label=name)
        for key, name in zip(keys, names, strict=True):
            ax_val.plot(epochs, series(history, key), marker="o", label=f"val {name}")
        title = f"Validation {_joined(names)}" if names else "Validation metrics"
        for ax, heading in ((ax_loss, "Loss"), (ax_val, title)):
            _mark_unfreezes(ax, history, labels=ax is ax_loss)
            _epoch_axis(ax, epochs)
            ax.set_title(heading)
            if ax.lines:
                ax.legend(loc="best")
        return to_svg(fig, "training curves")


def lr_curves(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Learning rate per optimizer group (log scale; ``/no_decay`` twins skipped); None without learning rates."""
    groups = list(dict.fromkeys(g for row in history for g in (row.get("lr") or {}) if "/no_decay" not in g))
    epochs = series(history, "epoch")
    rates = {g: np.array([(row.get("lr") or {}).get(g) or np.nan for row in history], dtype=float) for g in groups}
    rates = {g: np.where(v > 0, v, np.nan) for g, v in rates.items() if np.any(v > 0)}
    if not rates:
        return None
    with figure_style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["viridis"]
        for i, (group, values) in enumerate(rates.items()):
            color = COLORS[i] if len(rates) <= len(COLORS) else cmap(i / max(len(rates) - 1, 1))
            ax.plot(epochs, values, marker="o", label=group, color=color)
        ax.set_yscale("log")
        ax.set_ylabel("learning rate at end of epoch")
        _mark_unfreezes(ax, history, labels=False)
        _epoch_axis(ax, epochs)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), ncols=1 + len(rates) // 12)
        return to_svg(fig, "learning rate per group")


def _compare_key(runs: Mapping[str, Sequence[Mapping[str, Any]]], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` every run's history has a value of."""
    for key in keys:
        if all(any(r.get(key) is not None for r in h) for h in runs.values()):
            return key
    return None


def compare_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], keys: Sequence[str] = ()) -> str | None:
    """One validation metric per epoch, one line per strategy: the first of ``keys`` (the task's primary, as
    ``val_<metric>``) every run has, else the first other validation key they share (classification:
    macro-F1, or accuracy when a run lacks F1)."""
    runs = {name: h for name, h in histories.items() if h}
    if not runs:
        return None
    shared = [*keys, "val_macro_f1", "val_accuracy", *validation_keys([r for h in runs.values() for r in h])]
    key = _compare_key(runs, shared)
    if key is None:
        return None
    name = f"validation {metric_name(key)}"
    with figure_style():
        fig = Figure(figsize=WIDE, layout="constrained")
        ax = fig.subplots()
        for strategy, history in runs.items():
            ax.plot(series(history, "epoch"), series(history, key), marker="o", markersize=4.5, label=strategy)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(f"{name[0].upper()}{name[1:]} per epoch (probe runs: one point)")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return to_svg(fig, "validation curves per strategy")


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

"""The multi-label part of a run report: per-label precision / recall / F1 / AP, per-label precision-recall
curves, the label co-occurrence matrix of the test split, and the most confident mistakes.

:func:`sections` is what the multilabel task's ``report`` returns (see :mod:`headstart.tasks.multilabel`); it
reads ``predictions.csv`` the multi-label way (``id,true,pred,p_<label>...``, label sets joined by ``|``) with
:func:`label_predictions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.report import multilabel_plots as plots
from headstart.report.examples import BY_ID, MAX_SHOWN, Example, gallery
from headstart.report.layout import Html, figures, fmt_num, section, table
from headstart.report.plots import metric_bars
from headstart.report.rundata import PredictionRows, RunData

__all__ = ["SEPARATOR", "LabelPredictions", "label_predictions", "mistake_margins", "sections"]

SEPARATOR = "|"  # joins the labels of one example in predictions.csv
BARS = ("precision", "recall", "f1", "average_precision")
MISSING = "predictions.csv is missing: "


@dataclass(frozen=True)
class LabelPredictions:
    """Test-split predictions from ``predictions.csv`` as multi-hot rows over ``labels``."""

    ids: list[str]  # (m,) example ids
    Y: np.ndarray  # (m, L) int64 true labels, multi-hot
    pred: np.ndarray  # (m, L) int64 predicted labels, multi-hot
    proba: np.ndarray  # (m, L) float per-label probabilities
    labels: list[str]  # (L,) label names

    def __len__(self) -> int:
        return len(self.ids)

    def names(self, row: np.ndarray) -> str:
        """The labels of a multi-hot row, comma-separated (``(none)`` for the empty set)."""
        return ", ".join(label for label, on in zip(self.labels, row, strict=True) if on) or "(none)"


def _multi_hot(cells: list[str], labels: list[str], rows: PredictionRows) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(cells), len(labels)), dtype=np.int64)
    for i, cell in enumerate(cells):
        for label in filter(None, (part.strip() for part in cell.split(SEPARATOR))):
            if label not in index:
                raise HeadstartError(f"{rows.path} names label {label!r} which is not among the run's labels {labels}")
            out[i, index[label]] = 1
    return out


def label_predictions(rows: PredictionRows | None, labels: list[str]) -> LabelPredictions | None:
    """``predictions.csv`` (id,true,pred,p_<label>...) parsed, or None when the file is missing."""
    if rows is None:
        return None
    rows.require(["true", "pred", *[f"p_{label}" for label in labels]], "it does not match the run's labels")
    proba = np.zeros((len(rows), len(labels)))
    for j, label in enumerate(labels):
        proba[:, j] = rows.numbers(f"p_{label}")
    Y, pred = (_multi_hot(rows.text(c), labels, rows) for c in ("true", "pred"))
    return LabelPredictions(rows.ids, Y, pred, proba, labels)


def _thresholds(data: RunData, labels: list[str]) -> np.ndarray:
    """(L,) the decision threshold of each label (``per_label`` of metrics.json, else the manifest's, else 0.5)."""
    per_label = data.metrics.get("per_label") or {}
    saved = data.manifest.get("threshold")
    fallback = saved if isinstance(saved, list) and len(saved) == len(labels) else [0.5] * len(labels)
    return np.array(
        [float((per_label.get(label) or {}).get("threshold") or t) for label, t in zip(labels, fallback, strict=True)]
    )


def mistake_margins(p: LabelPredictions, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(margin, label)`` per example: how far past its threshold the most wrong label's probability is (a
    predicted label that is absent: p - t; a missed one: t - p), and which label that is; margin is NaN where
    the predicted set equals the true set.

    >>> p = LabelPredictions(["a", "b"], np.array([[1, 0], [0, 1]]), np.array([[1, 1], [0, 1]]),
    ...                      np.array([[0.9, 0.8], [0.1, 0.7]]), ["crack", "dirt"])
    >>> margin, label = mistake_margins(p, np.array([0.5, 0.5]))
    >>> np.round(margin, 2).tolist(), label.tolist()
    ([0.3, nan], [1, 0])
    """
    wrong = p.pred != p.Y
    distance = np.where(wrong, np.abs(p.proba - thresholds[None, :]), -np.inf)
    label = distance.argmax(1)
    margin = distance[np.arange(len(p)), label]
    return np.where(wrong.any(1), margin, np.nan), label


def _per_label(data: RunData) -> Html:
    per_label = data.metrics.get("per_label") or {}
    if not per_label:
        return Html("")
    labels = [label for label in data.labels if label in per_label] or list(per_label)
    svg = metric_bars(per_label, labels, BARS, "per-label precision recall F1 AP")
    keys = ("precision", "recall", "f1", "average_precision", "roc_auc", "support", "threshold")
    rows = [[label, *(fmt_num(per_label[label].get(k)) for k in keys)] for label in labels]
    headers = ["label", "precision", "recall", "F1", "AP", "ROC-AUC", "support", "threshold"]
    body = figures(svg) + table(headers, rows, numeric=set(range(1, len(headers))))
    note = "Decisions at each label's threshold (tuned on validation); AP and ROC-AUC rank the scores alone."
    return section("per-label", "Per-label precision, recall, F1 and AP", body, note)


def _pr_curves(p: LabelPredictions | None) -> Html:
    title = "Precision-recall per label"
    if p is None or len(p) == 0:
        return section("pr-labels", title, "", MISSING + "no curves.")
    svg = plots.label_pr_curves(p.Y, p.proba, p.labels)
    if svg is None:
        return section("pr-labels", title, "", "No label has both positive and negative test examples: no curves.")
    note = "One curve per label with positive and negative test examples. Computed from predictions.csv."
    return section("pr-labels", title, figures(svg), note)


def _cooccurrence(p: LabelPredictions | None) -> Html:
    title = "Label co-occurrence"
    if p is None or len(p) == 0:
        return section("cooccurrence", title, "", MISSING + "no co-occurrence matrix.")
    empty = int((p.Y.sum(1) == 0).sum())
    note = (
        "Test examples whose true labels include both the row and the column label (the diagonal: each label's "
        f"examples), coloured by the fraction of the row label's examples; {empty} of {len(p)} have no label."
    )
    return section("cooccurrence", title, figures(plots.cooccurrence(p.Y, p.labels)), note)


def _mistakes(data: RunData, p: LabelPredictions | None, examples: Example | None) -> Html:
    title = "Most confident mistakes"
    if p is None:
        return section("mistakes", title, "", MISSING + "mistakes cannot be listed.")
    t = _thresholds(data, p.labels)
    margin, worst = mistake_margins(p, t)
    wrong = np.flatnonzero(np.isfinite(margin))
    order = wrong[np.argsort(-margin[wrong], kind="stable")][:MAX_SHOWN]
    if len(order) == 0:
        return section("mistakes", title, "", "Every test example's predicted label set equals its true set.")

    def label(i: int) -> str:  # +label: predicted but absent, −label: present but missed
        j = worst[i]
        return ("+" if p.pred[i, j] else "−") + p.labels[j]

    def cells(i: int) -> list[Any]:
        j = worst[i]
        return [p.ids[i], p.names(p.Y[i]), p.names(p.pred[i]), label(i), f"{p.proba[i, j]:.3f}", f"{t[j]:.3f}"]

    body, kind = gallery(
        p.ids,
        order.tolist(),
        examples,
        caption=lambda i: f"{p.names(p.Y[i])} → {p.names(p.pred[i])} ({label(i)} {p.proba[i, worst[i]]:.2f})",
        headers=["id", "true", "predicted", "most wrong label", "its probability", "its threshold"],
        cells=cells,
        numeric={4, 5},
    )
    note = (
        f"{len(wrong)} of {len(p)} test examples have a predicted label set other than the true one; the "
        f"{len(order)} whose most wrong label is furthest past its threshold (+label: predicted but absent, "
        "−label: present but missed):"
    )
    note += {"images": " true → predicted (most wrong label, its probability).", "ids": BY_ID}.get(kind, "")
    return section("mistakes", title, body, note)


def sections(data: RunData, examples: Example | None = None) -> list[Html]:
    """The multi-label sections of a run report, in page order."""
    p = label_predictions(data.predictions, data.labels)
    return [_per_label(data), _pr_curves(p), _cooccurrence(p), _mistakes(data, p, examples)]

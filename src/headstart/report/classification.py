"""The classification part of a run report: confusion matrix, per-class bars, ROC and precision-recall
curves, reliability, and the most confident mistakes; and the ROC per strategy of a comparison.

:func:`sections` is what the classification task's ``report`` returns (see
:mod:`headstart.tasks.classification`); it reads ``predictions.csv`` the classification way
(``id,true,pred,confidence,p_<label>...``) with :func:`class_predictions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.metrics.calibration import expected_calibration_error
from headstart.report import classification_plots as plots
from headstart.report.examples import BY_ID, MAX_SHOWN, Example, gallery
from headstart.report.layout import Html, figures, fmt_num, section, table
from headstart.report.rundata import PredictionRows, RunData

__all__ = ["ClassPredictions", "class_predictions", "compare_figures", "sections"]


@dataclass(frozen=True)
class ClassPredictions:
    """Test-split predictions from ``predictions.csv``, with class names mapped to indices into ``labels``."""

    ids: list[str]  # (m,) example ids
    y: np.ndarray  # (m,) int64 true class index
    pred: np.ndarray  # (m,) int64 predicted class index
    confidence: np.ndarray  # (m,) float probability of the predicted class
    proba: np.ndarray  # (m, K) float class probabilities, columns in the order of ``labels``
    labels: list[str]  # (K,) class names

    def __len__(self) -> int:
        return len(self.ids)


def class_predictions(rows: PredictionRows | None, labels: list[str]) -> ClassPredictions | None:
    """``predictions.csv`` (id,true,pred,confidence,p_<label>...) parsed, or None when the file is missing."""
    if rows is None:
        return None
    columns = ["true", "pred", "confidence", *[f"p_{label}" for label in labels]]
    rows.require(columns, "it does not match the run's labels")
    index = {label: i for i, label in enumerate(labels)}
    try:
        y = np.array([index[t] for t in rows.text("true")], dtype=np.int64)
        pred = np.array([index[t] for t in rows.text("pred")], dtype=np.int64)
    except KeyError as e:
        raise HeadstartError(f"{rows.path} names class {e} which is not among the run's labels {labels}") from e
    proba = np.zeros((len(rows), len(labels)))
    for k, label in enumerate(labels):
        proba[:, k] = rows.numbers(f"p_{label}")
    return ClassPredictions(rows.ids, y, pred, rows.numbers("confidence"), proba, labels)


def _confusion(data: RunData) -> Html:
    cm, labels = data.metrics.get("confusion_matrix"), data.labels
    if not cm or not labels:
        return section("confusion", "Confusion matrix", "", "metrics.json has no confusion matrix.")
    note = "Rows: true class, columns: predicted class; counts, coloured by the fraction of the row."
    return section("confusion", "Confusion matrix", figures(plots.confusion_matrix(cm, labels)), note)


def _per_class(data: RunData) -> Html:
    per_class = data.metrics.get("per_class") or {}
    if not per_class:
        return Html("")
    svg = plots.per_class_bars(per_class, data.labels)
    rows = [[c, *(fmt_num(per_class[c].get(k)) for k in ("precision", "recall", "f1", "support"))] for c in per_class]
    body = figures(svg) + table(["class", "precision", "recall", "F1", "support"], rows, numeric={1, 2, 3, 4})
    return section("per-class", "Per-class precision, recall and F1", body)


def _roc_pr(p: ClassPredictions | None) -> Html:
    if p is None or len(p) == 0:
        return section("roc-pr", "ROC and precision-recall", "", "predictions.csv is missing: no curves.")
    roc, pr = plots.roc_curves(p.y, p.proba, p.labels), plots.pr_curves(p.y, p.proba, p.labels)
    if roc is None:
        return section("roc-pr", "ROC and precision-recall", "", "The test split holds a single class: no curves.")
    note = (
        f"Positive class: {p.labels[1]}." if len(p.labels) == 2 else "One curve per class, that class against the rest."
    )
    return section("roc-pr", "ROC and precision-recall", figures(roc, pr), note + " Computed from predictions.csv.")


def _reliability(data: RunData, p: ClassPredictions | None) -> Html:
    rel, source = data.metrics.get("reliability"), "Bins from metrics.json."
    svg = plots.reliability_diagram(rel, data.metrics.get("ece")) if rel else None
    if svg is None and p is not None and len(p):
        ece, rel = expected_calibration_error(p.y, p.proba, n_bins=15)
        svg, source = plots.reliability_diagram(rel, ece), "15 equal-width bins from predictions.csv."
    if svg is None:
        return section("reliability", "Reliability", "", "No calibration data (predictions.csv is missing).")
    note = "Bars: accuracy of the test predictions whose confidence falls in each bin; calibrated = on the diagonal."
    return section("reliability", "Reliability", figures(svg), f"{note} {source}")


def _mistakes(p: ClassPredictions | None, examples: Example | None) -> Html:
    title = "Most confident mistakes"
    if p is None:
        return section("mistakes", title, "", "predictions.csv is missing: mistakes cannot be listed.")
    wrong = np.flatnonzero(p.pred != p.y)
    order = wrong[np.argsort(-p.confidence[wrong], kind="stable")][:MAX_SHOWN]
    if len(order) == 0:
        return section("mistakes", title, "", "No test example is misclassified.")
    body, kind = gallery(
        p.ids,
        order.tolist(),
        examples,
        caption=lambda i: f"{p.labels[p.y[i]]} → {p.labels[p.pred[i]]} ({p.confidence[i]:.2f})",
        headers=["id", "true", "predicted", "confidence"],
        cells=lambda i: [p.ids[i], p.labels[p.y[i]], p.labels[p.pred[i]], f"{p.confidence[i]:.3f}"],
        numeric={3},
    )
    note = f"{len(wrong)} of {len(p)} test examples are wrong; the {len(order)} with the highest confidence:"
    note += {
        "images": " true → predicted.",
        "clips": " log-mel spectrogram and the clip; true → predicted.",
        "ids": BY_ID,
    }.get(kind, "")
    return section("mistakes", title, body, note)


def sections(data: RunData, examples: Example | None = None) -> list[Html]:
    """The classification sections of a run report, in page order."""
    p = class_predictions(data.predictions, data.labels)
    return [_confusion(data), _per_class(data), _roc_pr(p), _reliability(data, p), _mistakes(p, examples)]


def compare_figures(runs: dict[str, RunData]) -> list[Any]:
    """The comparison page's test-split figures: one ROC curve per run (``runs``: display name -> run)."""
    preds = {name: class_predictions(r.predictions, r.labels) for name, r in runs.items()}
    curves = {name: (p.y, p.proba) for name, p in preds.items() if p is not None}
    labels = next(iter(runs.values())).labels if runs else []
    return [plots.compare_roc(curves, labels)] if curves else []

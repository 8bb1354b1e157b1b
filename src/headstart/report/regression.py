"""The regression part of a run report: predicted against true values, residuals, the error per range of the
true value, and the test examples with the largest errors.

:func:`sections` is what the regression task's ``report`` returns (see :mod:`headstart.tasks.regression`);
it reads ``predictions.csv`` the regression way (``id,true,pred,error``) with :func:`value_predictions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headstart.metrics.regression import error_by_range
from headstart.report import regression_plots as plots
from headstart.report.examples import BY_ID, MAX_SHOWN, Example, gallery
from headstart.report.layout import Html, figures, fmt_num, section, table
from headstart.report.rundata import PredictionRows, RunData

__all__ = ["RANGES", "ValuePredictions", "sections", "value_predictions"]

RANGES = 4  # quantile ranges of the true value in the error-by-range section
MISSING = "predictions.csv is missing: "


@dataclass(frozen=True)
class ValuePredictions:
    """Test-split predictions from ``predictions.csv``: one true and one predicted value per example."""

    ids: list[str]  # (m,) example ids
    y: np.ndarray  # (m,) float true values
    pred: np.ndarray  # (m,) float predicted values

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def error(self) -> np.ndarray:
        """(m,) predicted - true."""
        return self.pred - self.y


def value_predictions(rows: PredictionRows | None) -> ValuePredictions | None:
    """``predictions.csv`` (id,true,pred,error) parsed, or None when the file is missing."""
    if rows is None:
        return None
    rows.require(["true", "pred"], "it is not a regression run's predictions.csv")
    return ValuePredictions(rows.ids, rows.numbers("true"), rows.numbers("pred"))


def _target_name(data: RunData) -> str:
    labels = data.manifest.get("labels") or []
    return str(labels[0]) if len(labels) == 1 and labels[0] != "label" else "value"


def _fit(data: RunData, p: ValuePredictions | None) -> Html:
    """Predicted against true values, and the histogram of the errors."""
    title = "Predicted vs true, and residuals"
    if p is None or len(p) == 0:
        return section("scatter", title, "", MISSING + "no scatter plot or residuals.")
    err = p.error
    scatter = plots.scatter(p.y, p.pred, _target_name(data))
    note = (
        "One point per test example; on the dashed line the prediction equals the true value. "
        f"Error = predicted - true: mean {fmt_num(float(err.mean()))} (a bias when far from 0), "
        f"median absolute {fmt_num(float(np.median(np.abs(err))))}."
    )
    return section("scatter", title, figures(scatter, plots.residual_histogram(p.y, p.pred)), note)


def _by_range(p: ValuePredictions | None) -> Html:
    title = "Error by range of the true value"
    if p is None or len(p) == 0:
        return section("error-range", title, "", MISSING + "no error by range.")
    ranges = error_by_range(p.y, p.pred, bins=RANGES)
    rows = [[f"{fmt_num(r['low'])} – {fmt_num(r['high'])}", r["n"], fmt_num(r["mae"])] for r in ranges]
    body = figures(plots.error_bars(ranges)) + table(["true value range", "examples", "MAE"], rows, numeric={1, 2})
    note = f"Test examples in {len(ranges)} quantile ranges of the true value (the last includes its upper end)."
    return section("error-range", title, body, note)


def _largest(p: ValuePredictions | None, examples: Example | None) -> Html:
    title = "Largest errors"
    if p is None or len(p) == 0:
        return section("largest-errors", title, "", MISSING + "the largest errors cannot be listed.")
    err = p.error
    order = np.argsort(-np.abs(err), kind="stable")[:MAX_SHOWN]
    body, kind = gallery(
        p.ids,
        order.tolist(),
        examples,
        caption=lambda i: f"true {p.y[i]:.3g} → {p.pred[i]:.3g} ({err[i]:+.3g})",
        headers=["id", "true", "predicted", "error"],
        cells=lambda i: [p.ids[i], f"{p.y[i]:.4g}", f"{p.pred[i]:.4g}", f"{err[i]:+.4g}"],
        numeric={1, 2, 3},
    )
    note = f"The {len(order)} of {len(p)} test examples with the largest absolute error:"
    note += {"images": " true → predicted (error).", "ids": BY_ID}.get(kind, "")
    return section("largest-errors", title, body, note)


def sections(data: RunData, examples: Example | None = None) -> list[Html]:
    """The regression sections of a run report, in page order."""
    p = value_predictions(data.predictions)
    return [_fit(data, p), _by_range(p), _largest(p, examples)]

"""Metrics over whole evaluated sets (scikit-learn), with small-data honesty: intervals, calibration, warnings."""

from headstart.metrics.bootstrap import bootstrap_ci, percentile_interval
from headstart.metrics.calibration import expected_calibration_error
from headstart.metrics.classification import (
    MIN_RELIABLE_SUPPORT,
    class_warnings,
    compute_metrics,
    log_loss_from_proba,
    predict_labels,
)
from headstart.metrics.threshold import parse_objective, tune_threshold

__all__ = [
    "MIN_RELIABLE_SUPPORT",
    "bootstrap_ci",
    "class_warnings",
    "compute_metrics",
    "expected_calibration_error",
    "log_loss_from_proba",
    "parse_objective",
    "percentile_interval",
    "predict_labels",
    "tune_threshold",
]

"""Metrics over whole evaluated sets (scikit-learn)."""

from headstart.metrics.classification import compute_metrics, log_loss_from_proba

__all__ = ["compute_metrics", "log_loss_from_proba"]

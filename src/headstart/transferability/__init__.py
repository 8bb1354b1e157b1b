"""Transferability estimators: rank candidate backbones for a target task before training a head."""

from headstart.transferability.estimators import hscore, knn_accuracy, leep, logme, nce
from headstart.transferability.target_estimators import (
    knn_mean_average_precision,
    knn_r2,
    logme_multilabel,
    logme_regression,
)

__all__ = [
    "hscore",
    "knn_accuracy",
    "knn_mean_average_precision",
    "knn_r2",
    "leep",
    "logme",
    "logme_multilabel",
    "logme_regression",
    "nce",
]

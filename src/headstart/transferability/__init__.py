"""Transferability estimators: rank candidate backbones for a target task before training a head."""

from headstart.transferability.estimators import hscore, knn_accuracy, leep, logme, nce

__all__ = ["hscore", "knn_accuracy", "leep", "logme", "nce"]

"""The linear head the non-timm classifiers (text and audio encoders) put on their pooled features."""

from __future__ import annotations

from torch import nn

__all__ = ["linear_head"]


def linear_head(num_features: int, num_classes: int) -> nn.Module:
    """A linear head; ``num_classes=0`` gives no head (features out), as timm does."""
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()

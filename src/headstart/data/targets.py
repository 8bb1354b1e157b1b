"""Targets of any task as bytes (fingerprints) and tensors (batches): class indices (N,) int64, values (N,)
float32, or multi-hot rows (N, L) float32. Nothing here knows which task made them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["LABEL_SET_SEPARATOR", "target_bytes", "target_tensor"]

LABEL_SET_SEPARATOR = "\x1f"  # joins the items of a label list (JSONL, in-memory) into one label string


def target_bytes(targets: np.ndarray) -> bytes:
    """The targets as fingerprint bytes: class indices as ever; values and multi-hot rows with dtype and shape."""
    if targets.dtype == np.int64:
        return targets.tobytes()
    return f"{targets.dtype}{targets.shape}".encode() + np.ascontiguousarray(targets).tobytes()


def target_tensor(rows: Sequence[Any]) -> torch.Tensor:
    """One batch's targets, in their own dtype: long class indices, float values or float multi-hot rows.

    >>> target_tensor([np.int64(2), np.int64(0)]).dtype, target_tensor([np.float32(0.5)]).dtype
    (torch.int64, torch.float32)
    """
    if len(rows) == 0:
        return torch.empty(0, dtype=torch.long)
    return torch.from_numpy(np.stack([np.asarray(r) for r in rows]))

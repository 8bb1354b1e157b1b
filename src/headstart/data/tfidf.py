"""Batches of TF-IDF term counts for the text ``scratch`` baseline (:class:`~headstart.backbones.tfidf.TfidfRecipe`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse
from torch.utils.data import DataLoader

from headstart.backbones.tfidf import TfidfRecipe
from headstart.data.loader import Batch
from headstart.data.targets import target_tensor

__all__ = ["make_tfidf_loader"]


def make_tfidf_loader(
    texts: Sequence[str],
    targets: np.ndarray,
    index: np.ndarray,
    recipe: TfidfRecipe,
    batch_size: int,
) -> DataLoader:
    """Batches whose ``x`` is the dense (B, V) term-count matrix of the texts at ``index``."""
    counts = sparse.csr_matrix(recipe.counter().transform([texts[i] for i in index]))
    positions = list(range(len(index)))

    def collate(rows: list[int]) -> Batch:
        dense = torch.from_numpy(counts[rows].toarray().astype(np.float32))  # (B, V)
        idx = torch.as_tensor(np.asarray(index)[rows], dtype=torch.long)
        return Batch(dense, target_tensor(list(np.asarray(targets)[idx.numpy()])), idx, [])

    batches = [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]
    return DataLoader(batches, batch_size=None, collate_fn=collate)  # type: ignore[arg-type]

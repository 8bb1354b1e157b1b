"""One entry point for loaders, whatever the modality: the recipe's plug-in decides how examples become batches
(:class:`~headstart.modalities.base.RecipeKind`: images through torchvision transforms, texts tokenized once
into length-bucketed batches, TF-IDF term counts, ...).

The train loop, feature extraction, evaluate and predict call only these two functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from headstart.backbones.recipe import Recipe
from headstart.config import PreprocessConfig
from headstart.data.balance import sample_weights
from headstart.modalities import recipe_kind

__all__ = ["eval_loader", "train_loader"]


def eval_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Batches of ``data[index]`` in a deterministic order, preprocessed as the recipe says."""
    return recipe_kind(recipe).eval_loader(data, index, recipe, batch_size, num_workers)


def train_loader(
    data: Any,
    index: np.ndarray,
    recipe: Recipe,
    preprocess: PreprocessConfig,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool,
    num_workers: int = 0,
    balanced: bool = False,
) -> DataLoader:
    """Shuffled training batches (augmented images; length-bucketed text), driven by ``generator``.

    ``balanced`` draws examples with replacement so that every class is drawn equally often."""
    weights = sample_weights(data.targets[index], len(data.labels)) if balanced else None
    kind = recipe_kind(recipe)
    return kind.train_loader(data, index, recipe, preprocess, batch_size, generator, drop_last, num_workers, weights)
